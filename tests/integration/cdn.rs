//! Behind a cache: the CDN's cache lifetimes (terraform) agree with `src/cache_rules.rs`, and a
//! real caching proxy (Debian's nginx with `examples/nginx/packages-cache.conf`) in front of
//! `packages serve` honours `Cache-Control` while packages are uploaded and removed.
//!
//! The nginx test needs the `nginx` binary: `scripts/test-terraform` (a phase of `scripts/test`)
//! installs it and exports `PACKAGES_TEST_REQUIRE_NGINX=1`; without it the test says so and
//! skips. Real `apk` clients through the cache are not run here (no `apk` binary on Debian);
//! the test checks what apk would: every index's signature, every named file's size and checksum.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use packages::cache_rules::{CacheClass, INDEX_MAX_AGE, ObjectKind};

use crate::support::{
    HttpResponse, apk_checksum, apk_fixture, curl_get, field, openssl_verify, parse_index,
};

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines between `<name> = <open>` and the matching close, in terraform's locals.tf.
fn hcl_block<'a>(text: &'a str, name: &str, open: char, close: char) -> Vec<&'a str> {
    let start = format!("{name} = {open}");
    let mut lines = text.lines().skip_while(|l| l.trim() != start);
    assert!(lines.next().is_some(), "locals.tf has no `{start}`");
    lines
        .take_while(|l| l.trim() != close.to_string())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn terraform_ttls() -> BTreeMap<String, u64> {
    let locals = repo_file("terraform/modules/packages/locals.tf");
    hcl_block(&locals, "cache_ttl", '{', '}')
        .into_iter()
        .map(|l| {
            let (k, v) = l.split_once('=').expect("name = seconds");
            (k.trim().to_owned(), v.trim().parse().expect("seconds"))
        })
        .collect()
}

fn terraform_patterns(name: &str) -> Vec<String> {
    let locals = repo_file("terraform/modules/packages/locals.tf");
    hcl_block(&locals, name, '[', ']')
        .into_iter()
        .map(|l| l.trim_end_matches(',').trim_matches('"').to_owned())
        .collect()
}

#[test]
fn terraform_cache_ttls_are_the_cache_rules() {
    let ttls = terraform_ttls();
    let expected: BTreeMap<String, u64> = CacheClass::ALL
        .iter()
        .map(|c| (c.terraform_name().to_owned(), c.max_age()))
        .collect();
    assert_eq!(
        ttls, expected,
        "terraform/modules/packages/locals.tf `cache_ttl` must equal src/cache_rules.rs"
    );
}

/// CloudFront path patterns: `*` any run of characters (slashes included), `?` one.
fn glob(pattern: &[u8], path: &[u8]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], path) || (!path.is_empty() && glob(pattern, &path[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &path[1..]),
        (Some(p), Some(c)) if p == c => glob(&pattern[1..], &path[1..]),
        _ => false,
    }
}

/// Every path the repositories publish, as CloudFront sees it, gets a CDN lifetime no shorter
/// than the object's own `Cache-Control` (CloudFront keeps min(max_ttl, max-age) with min_ttl
/// 0), and signed roots are capped by the CDN itself even without object metadata.
#[test]
fn cdn_path_patterns_agree_with_object_kinds() {
    let ttls = terraform_ttls();
    let mut behaviours: Vec<(String, &str)> = Vec::new();
    for (list, class) in [
        ("index_path_patterns", "index"),
        ("medium_path_patterns", "medium"),
    ] {
        for p in terraform_patterns(list) {
            behaviours.push((p, class));
        }
    }
    assert!(behaviours.iter().any(|(p, _)| p == "*/APKINDEX.tar.gz"));
    let cdn_class = |path: &str| {
        behaviours
            .iter()
            .find(|(p, _)| glob(p.as_bytes(), path.as_bytes()))
            .map_or("immutable", |(_, c)| *c)
    };
    let paths = [
        "acme/alpine/edge/main/x86_64/hello-1.0-r0.apk",
        "acme/alpine/edge/main/x86_64/APKINDEX.tar.gz",
        "acme/alpine/acme-1a2b3c4d.rsa.pub",
        "acme/alpine/v3.20/main/acme-1a2b3c4d.rsa.pub",
        "acme/debian/dists/stable/InRelease",
        "acme/debian/dists/stable/Release",
        "acme/debian/dists/stable/Release.gpg",
        "acme/debian/dists/stable/main/binary-amd64/Packages.gz",
        "acme/debian/dists/stable/main/binary-amd64/by-hash/SHA256/0123abcd",
        "acme/debian/pool/main/h/hello/hello_1.0-1_amd64.deb",
        "acme/debian/acme.asc",
        "acme/debian/acme.gpg",
        "acme/fedora/40/main/x86_64/repodata/repomd.xml",
        "acme/fedora/40/main/x86_64/repodata/repomd.xml.asc",
        "acme/fedora/40/main/x86_64/repodata/0123456789abcdef0123456789abcdef01234567-primary.xml.zst",
        "acme/fedora/40/main/x86_64/hello-1.0-1.fc40.x86_64.rpm",
        "acme/fedora/acme.repo",
    ];
    for path in paths {
        let kind = ObjectKind::for_public_path(path).unwrap_or_else(|| panic!("{path}: no kind"));
        let request = format!("/{path}");
        let class = cdn_class(&request);
        let cdn_max = ttls[class];
        assert!(
            cdn_max >= kind.cache_class().max_age(),
            "{path}: CloudFront ({class}, {cdn_max} s) would cut {kind:?}'s lifetime"
        );
        if (kind == ObjectKind::SignedIndex && !path.contains("/Packages"))
            || kind == ObjectKind::SignaturePair
        {
            assert_eq!(
                class, "index",
                "{path}: a signed root must match a short pattern"
            );
        }
        if kind == ObjectKind::SignaturePair {
            // The object's `max-age=0, no-cache` holds only under a minimum TTL of 0.
            assert_eq!(kind.cache_class().max_age(), 0, "{path}");
            let cloudfront = repo_file("terraform/modules/packages/cloudfront.tf");
            let policy = cloudfront
                .split("resource \"aws_cloudfront_cache_policy\" \"index\"")
                .nth(1)
                .expect("the index cache policy");
            assert!(
                policy
                    .split("min_ttl")
                    .nth(1)
                    .is_some_and(|v| v.trim_start().starts_with("= 0")),
                "the index policy must keep min_ttl = 0"
            );
        }
        if kind.cache_class() == CacheClass::Medium {
            assert_eq!(
                class, "medium",
                "{path}: keys and .repo files are medium at the CDN"
            );
        }
    }
}

// ---- a real caching proxy ----------------------------------------------------------------

/// Stops the child processes when the test ends, however it ends: SIGTERM first, so nginx's
/// master stops its workers too (SIGKILL would orphan them).
struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        for child in &mut self.0 {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn packages(store: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_packages"))
        .arg("--storage")
        .arg(store)
        .args(args)
        .output()
        .expect("run packages");
    assert!(
        out.status.success(),
        "packages {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `examples/nginx` with its ports, cache and pid paths replaced; every replacement must hit.
fn nginx_config(dir: &Path, origin_port: u16, proxy_port: u16) -> PathBuf {
    let replace = |text: String, from: &str, to: &str| {
        assert!(text.contains(from), "examples/nginx no longer has `{from}`");
        text.replace(from, to)
    };
    let site = repo_file("examples/nginx/packages-cache.conf");
    let site = replace(
        site,
        "/var/cache/nginx/packages",
        &dir.join("cache").display().to_string(),
    );
    let site = replace(
        site,
        "server 127.0.0.1:8080;",
        &format!("server 127.0.0.1:{origin_port};"),
    );
    let site = replace(
        site,
        "listen 8081;",
        &format!("listen 127.0.0.1:{proxy_port};"),
    );
    let main = repo_file("examples/nginx/nginx.conf");
    let main = replace(
        main,
        "/tmp/packages-cache-nginx.pid",
        &dir.join("nginx.pid").display().to_string(),
    );
    std::fs::write(dir.join("packages-cache.conf"), site).unwrap();
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    dir.join("nginx.conf")
}

fn wait_for(url: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if curl_get(url).status == 200 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not answer at {url}");
}

/// What a client saw: every index verified, every file it names fetched and checked.
#[derive(Default)]
struct Seen {
    indexes: usize,
    files: usize,
    failures: Vec<String>,
}

/// Does what `apk update && apk add` checks, through the cache: the index's signature with
/// the published key, then each named package's size and `C:` checksum.
fn client_round(proxy: &str, repo_path: &str, public_key: &[u8], seen: &Mutex<Seen>) {
    let index = curl_get(&format!("{proxy}/{repo_path}/x86_64/APKINDEX.tar.gz"));
    if index.status != 200 {
        seen.lock()
            .unwrap()
            .failures
            .push(format!("index: HTTP {}", index.status));
        return;
    }
    let parsed = parse_index(&index.body);
    let (ok, detail) = openssl_verify(public_key, &parsed.signature, &parsed.unsigned);
    let mut failures = Vec::new();
    if !ok {
        failures.push(format!("index signature: {detail}"));
    }
    let mut files = 0;
    for record in &parsed.records {
        let name = field(record, 'P').unwrap_or_default();
        let version = field(record, 'V').unwrap_or_default();
        let file = curl_get(&format!("{proxy}/{repo_path}/x86_64/{name}-{version}.apk"));
        files += 1;
        if file.status != 200 {
            failures.push(format!("{name}-{version}: HTTP {}", file.status));
            continue;
        }
        let size = field(record, 'S').and_then(|s| s.parse::<usize>().ok());
        if size != Some(file.body.len()) {
            failures.push(format!(
                "{name}-{version}: size {} vs S:{size:?}",
                file.body.len()
            ));
        }
        if field(record, 'C') != Some(apk_checksum(&file.body)) {
            failures.push(format!("{name}-{version}: checksum mismatch"));
        }
    }
    let mut seen = seen.lock().unwrap();
    seen.indexes += 1;
    seen.files += files;
    seen.failures.extend(failures);
}

fn cache_status(r: &HttpResponse) -> &str {
    r.header("x-cache-status").unwrap_or("-")
}

fn names(r: &HttpResponse) -> Vec<String> {
    parse_index(&r.body).names()
}

/// nginx in front of `packages serve`: indexes are cached no longer than their max-age and
/// packages for good; while packages are uploaded (through the cache's `/api/` and straight to
/// the store) and removed, a client looping through the cache never sees a bad signature, a
/// missing file or a checksum mismatch, and a new package shows up within the index lifetime.
#[test]
fn nginx_cache_honours_cache_control_while_publishing() {
    let Some(nginx) = nginx_binary() else {
        assert!(
            std::env::var("PACKAGES_TEST_REQUIRE_NGINX").as_deref() != Ok("1"),
            "nginx is missing and PACKAGES_TEST_REQUIRE_NGINX=1"
        );
        eprintln!(
            "\n######## SKIPPED cdn::nginx_cache_honours_cache_control_while_publishing: no nginx \
             (apt-get install nginx-light, or run scripts/test-terraform) ########\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    packages(&store, &["org", "create", "acme"]);
    let key = packages(
        &store,
        &[
            "key", "generate", "--org", "acme", "--distro", "alpine", "--bits", "2048",
        ],
    );
    let admin = String::from_utf8(packages(&store, &["admin", "init"]).stdout).unwrap();
    let admin = admin.trim().lines().last().expect("token").to_owned();
    let upload = |file: &str| {
        let path = apk_fixture(file);
        let path = path.to_str().unwrap();
        let args = [
            "upload",
            "--create",
            "--org",
            "acme",
            "--version",
            "edge",
            "--repo",
            "main",
            path,
        ];
        packages(&store, &args);
    };
    upload("package-x-1.0.0-r0.apk");
    upload("pretend-baselayout-1.0.0-r0.apk");
    // An RPM repository: `repomd.xml` and its detached signature.
    packages(
        &store,
        &[
            "key", "generate", "--org", "acme", "--distro", "fedora", "--bits", "2048",
        ],
    );
    let rpm = crate::support::fixture("rpm/acc-lib-1.2.0-1.x86_64.rpm");
    packages(
        &store,
        &[
            "upload",
            "--create",
            "--org",
            "acme",
            "--distro",
            "fedora",
            "--version",
            "40",
            "--repo",
            "main",
            rpm.to_str().unwrap(),
        ],
    );

    let origin_port = free_port();
    let proxy_port = free_port();
    let serve = Command::new(env!("CARGO_BIN_EXE_packages"))
        .arg("--storage")
        .arg(&store)
        .args(["serve", "--listen", &format!("127.0.0.1:{origin_port}")])
        .args(["--gc-interval-secs", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start packages serve");
    let mut running = Running(vec![serve]);
    let origin = format!("http://127.0.0.1:{origin_port}");
    wait_for(&format!("{origin}/health/ping"), "packages serve");

    let conf_dir = dir.path().join("nginx");
    std::fs::create_dir_all(&conf_dir).unwrap();
    let conf = nginx_config(&conf_dir, origin_port, proxy_port);
    let globals = if is_root() {
        // Workers would run as `nobody`, who cannot enter the private temp dir.
        "daemon off; user root;"
    } else {
        "daemon off;"
    };
    let proxy_process = Command::new(&nginx)
        .args(["-e", "stderr", "-p"])
        .arg(&conf_dir)
        .arg("-c")
        .arg(&conf)
        .args(["-g", globals])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    running.0.push(proxy_process);
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    wait_for(&format!("{proxy}/health/ping"), "nginx");

    let repo_path = "acme/alpine/edge/main";
    let index_url = format!("{proxy}/{repo_path}/x86_64/APKINDEX.tar.gz");
    // `key generate` prints the key name, then its path in the public tree.
    let key_path = String::from_utf8_lossy(&key.stdout)
        .lines()
        .find(|l| l.ends_with(".rsa.pub") && l.contains('/'))
        .expect("key generate prints the key's public path")
        .to_owned();
    let public_key = curl_get(&format!("{proxy}/{key_path}"));
    assert_eq!(public_key.status, 200, "public key through the cache");

    // The index: fetched once, then served from the cache with the origin's Cache-Control.
    let cached_at = Instant::now();
    let first = curl_get(&index_url);
    assert_eq!((first.status, cache_status(&first)), (200, "MISS"));
    assert_eq!(
        first.header("cache-control"),
        Some(ObjectKind::SignedIndex.cache_control())
    );
    let second = curl_get(&index_url);
    assert_eq!((second.status, cache_status(&second)), (200, "HIT"));
    assert_eq!(second.body, first.body);
    assert_eq!(names(&first), ["package-x", "pretend-baselayout"]);

    // A package: cached for good.
    let apk_url = format!("{proxy}/{repo_path}/x86_64/package-x-1.0.0-r0.apk");
    let apk = curl_get(&apk_url);
    assert_eq!((apk.status, cache_status(&apk)), (200, "MISS"));
    assert_eq!(
        apk.header("cache-control"),
        Some(ObjectKind::Package.cache_control())
    );
    assert_eq!(
        apk.body,
        std::fs::read(apk_fixture("package-x-1.0.0-r0.apk")).unwrap()
    );
    assert_eq!(cache_status(&curl_get(&apk_url)), "HIT");

    // `repomd.xml` and `repomd.xml.asc`: never served from the cache, so the pair a client
    // gets is never one half of one publish and the other half of another.
    for file in ["repomd.xml", "repomd.xml.asc"] {
        let url = format!("{proxy}/acme/fedora/linux/releases/40/main/x86_64/os/repodata/{file}");
        for _ in 0..2 {
            let r = curl_get(&url);
            assert_eq!(r.status, 200, "{file}");
            assert_ne!(cache_status(&r), "HIT", "{file} served from the cache");
            assert_eq!(
                r.header("cache-control"),
                Some(ObjectKind::SignaturePair.cache_control()),
                "{file}"
            );
        }
    }

    // A client loops through the cache while packages come and go.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (seen, stop, proxy) = (seen.clone(), stop.clone(), proxy.clone());
        let public_key = public_key.body.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                client_round(&proxy, repo_path, &public_key, &seen);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // Upload package-y through the cache's /api/ (never cached), then remove package-x.
    let uploaded_at = Instant::now();
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-F"])
        .arg(format!(
            "package=@{}",
            apk_fixture("package-y-1.0.0-r0.apk").display()
        ))
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .arg(format!("{proxy}/api/{repo_path}/x86_64/pkgs"))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "upload through the cache: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    packages(
        &store,
        &[
            "remove",
            "--org",
            "acme",
            "--version",
            "edge",
            "--repo",
            "main",
            "package-x",
        ],
    );
    upload("gitea-test-1.4.1-r3.apk");
    let origin_names = names(&curl_get(&format!(
        "{origin}/{repo_path}/x86_64/APKINDEX.tar.gz"
    )));
    assert_eq!(
        origin_names,
        ["gitea-test", "package-y", "pretend-baselayout"]
    );

    // Within the index lifetime the cache still serves what it has (it honours max-age) ...
    let ttl = Duration::from_secs(INDEX_MAX_AGE);
    let early = curl_get(&index_url);
    if cached_at.elapsed() + Duration::from_secs(2) < ttl {
        assert_eq!(
            cache_status(&early),
            "HIT",
            "the index is cached for its max-age"
        );
        assert_eq!(names(&early), ["package-x", "pretend-baselayout"]);
    }
    // ... and the new index comes through once it expires: within the lifetime of the upload.
    let deadline = cached_at + ttl + Duration::from_secs(15);
    let fresh = loop {
        let r = curl_get(&index_url);
        if r.status == 200 && names(&r) == origin_names {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the new index did not come through the cache within {INDEX_MAX_AGE} s (+15 s); last: {}",
            cache_status(&r)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // (Slack for a loaded machine: each poll is a curl process.)
    let visible_after = uploaded_at.elapsed();
    assert!(
        visible_after <= ttl + Duration::from_secs(10),
        "package-y became visible after {visible_after:?}, more than the index lifetime"
    );
    // Whoever fetched it first (this poll or the client loop), it is cached again now.
    assert_eq!(cache_status(&curl_get(&index_url)), "HIT");
    assert_eq!(curl_get(&index_url).body, fresh.body);

    // The removed package stays downloadable for clients holding an older index.
    assert_eq!(curl_get(&apk_url).status, 200);

    // Let the client see the new index a few times, then stop it.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    client.join().expect("client thread");
    let seen = seen.lock().unwrap();
    assert!(
        seen.failures.is_empty(),
        "the client saw failures: {:#?}",
        seen.failures
    );
    assert!(
        seen.indexes >= 20 && seen.files >= 40,
        "the client loop ran too little: {} indexes, {} files",
        seen.indexes,
        seen.files
    );
    eprintln!(
        "cdn: client verified {} indexes and {} files through nginx; package-y visible after {visible_after:?}",
        seen.indexes, seen.files
    );
    drop(running);
}
