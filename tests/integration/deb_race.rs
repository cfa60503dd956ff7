//! Debian suites under concurrency: uploads racing with the real `apt-get
//! update` (no "Hash Sum mismatch", no `W:`/`E:` line, ever), and concurrent
//! uploads into several components of one suite losing nothing.
//!
//! The packages are built here with `dpkg-deb --build` (synthetic, tiny).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use packages::formats::deb::release::signed_text;
use packages::publish::{Publisher, Upload};
use packages::repo::{Distro, DistsFile, Key, Org, RepoId, STATIC_PREFIX, SuiteId};
use packages::stores::Stores;
use sha2::{Digest, Sha256};

use crate::apt_client::{AptClient, require_tool};
use crate::deb::{serve, setup_debian};
use crate::support::{Bucket, Ctx, ORG, curl_get, url_path};

backend_tests!([local, garage] uploads_race_with_apt_update);
all_backends!(concurrent_uploads_to_components_lose_nothing);

/// The suite the tests publish.
const SUITE: &str = "race";

/// One synthetic package to build.
#[derive(Debug, Clone)]
struct Synth {
    name: String,
    version: String,
    arch: &'static str,
    component: &'static str,
}

impl Synth {
    fn new(name: String, component: &'static str, all: bool) -> Self {
        Self {
            name,
            version: "1.0-1".to_owned(),
            arch: if all { "all" } else { "amd64" },
            component,
        }
    }
}

/// Builds `synth` with `dpkg-deb --build` into `dir`; returns the file.
fn build_deb(synth: &Synth, dir: &Path) -> PathBuf {
    require_tool("dpkg-deb", "dpkg");
    let root = dir.join(format!("root-{}", synth.name));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/share/race")).unwrap();
    std::fs::write(
        root.join("usr/share/race").join(&synth.name),
        format!("{} payload\n", synth.name),
    )
    .unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\n\
             Maintainer: Race Test <race@example.invalid>\nSection: misc\n\
             Priority: optional\nDescription: synthetic package for race tests\n \
             Built by tests/integration/deb_race.rs.\n",
            synth.name, synth.version, synth.arch
        ),
    )
    .unwrap();
    let out = dir.join(format!(
        "{}_{}_{}.deb",
        synth.name, synth.version, synth.arch
    ));
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zgzip", "--build"])
        .arg(&root)
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run dpkg-deb");
    assert!(status.success(), "dpkg-deb --build {}", synth.name);
    std::fs::remove_dir_all(&root).unwrap();
    out
}

fn upload_of(synth: &Synth, path: &Path) -> Upload {
    Upload {
        repo: RepoId::parse(ORG, "debian", SUITE, synth.component).unwrap(),
        arch: None,
        extra_arches: Vec::new(),
        path: path.to_owned(),
        display_name: path.file_name().unwrap().to_string_lossy().into_owned(),
    }
}

fn suite_id() -> SuiteId {
    SuiteId::new(
        Org::parse(ORG).unwrap(),
        Distro::parse("debian").unwrap(),
        SUITE,
    )
    .unwrap()
}

/// Uploads `todo` from `tasks` concurrent tasks, each with its own
/// `Publisher` clone, one file at a time, round-robin over the tasks (so
/// every task writes to every component). Returns the packages acknowledged.
async fn upload_concurrently(
    publisher: &Publisher,
    todo: Vec<(Synth, PathBuf)>,
    tasks: usize,
) -> Vec<Synth> {
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let mine: Vec<(Synth, PathBuf)> = todo.iter().skip(t).step_by(tasks).cloned().collect();
        let publisher = publisher.clone();
        set.spawn(async move {
            let mut acked = Vec::new();
            for (synth, path) in mine {
                match publisher.upload(&upload_of(&synth, &path)).await {
                    Ok(_) => acked.push(synth),
                    Err(e) => panic!("upload of {} failed: {e}", synth.name),
                }
            }
            acked
        });
    }
    let mut acked = Vec::new();
    while let Some(done) = set.join_next().await {
        acked.extend(done.expect("upload task"));
    }
    acked
}

/// `count` packages per component, every third `Architecture: all`, built into `dir`.
fn build_set(
    dir: &Path,
    tag: &str,
    components: &[&'static str],
    count: usize,
) -> Vec<(Synth, PathBuf)> {
    let mut out = Vec::new();
    for i in 0..count {
        for component in components {
            let synth = Synth::new(format!("{tag}-{component}-{i:02}"), component, i % 3 == 2);
            let path = build_deb(&synth, dir);
            out.push((synth, path));
        }
    }
    out
}

// ---- uploads racing with apt-get update ----------------------------------

async fn uploads_race_with_apt_update(ctx: Ctx) {
    // The stores, how to reach the distro over HTTP, and a server to keep alive.
    let (public, place) = ctx.open(Bucket::Main).await;
    let (stores, base, _server) = match &place.dir {
        Some(dir) => {
            let server = serve(dir);
            let base = format!("{}/{ORG}/debian", server.1);
            (Stores::shared(public), base, Some(server))
        }
        None => {
            let web = ctx
                .s3()
                .web
                .clone()
                .expect("PACKAGES_TEST_GARAGE_WEB is set");
            let (private, _) = ctx.open(Bucket::Private).await;
            let base = format!(
                "{web}/{}",
                url_path(&format!("{}/static/{ORG}/debian", place.prefix))
            );
            (Stores::separate(public, private), base, None)
        }
    };
    let publisher = setup_debian(&stores).await;
    let work = ctx.temp_dir();

    // A base suite with both components.
    let seed = build_set(&work, "seed", &["main", "contrib"], 1);
    let acked = upload_concurrently(&publisher, seed.clone(), 1).await;
    assert_eq!(acked.len(), seed.len());
    let todo = build_set(&work, "race", &["main", "contrib"], 10);

    let keyring = work.join("archive-keyring.gpg");
    let got = curl_get(&format!("{base}/dists/{SUITE}/archive-keyring.gpg"));
    assert_eq!(got.status, 200, "the suite's keyring is published");
    std::fs::write(&keyring, &got.body).unwrap();
    let follower = AptClient::new(&base, SUITE, &["main", "contrib"], &keyring);
    follower.update().expect("first apt-get update");

    // apt-get update in a loop until the uploads are done: alternately the
    // same client (it holds the previous InRelease and lists, as a machine
    // following the repository does) and a fresh one (no lists at all).
    let done = Arc::new(AtomicBool::new(false));
    let apt_loop = {
        let done = done.clone();
        let (base, keyring) = (base.clone(), keyring.clone());
        tokio::task::spawn_blocking(move || {
            let mut updates = 0usize;
            let mut round = 0usize;
            while !done.load(Ordering::SeqCst) {
                round += 1;
                let fresh;
                let client = if round % 2 == 0 {
                    fresh = AptClient::new(&base, SUITE, &["main", "contrib"], &keyring);
                    &fresh
                } else {
                    &follower
                };
                if let Err(failure) = client.update() {
                    return Err((updates, failure));
                }
                updates += 1;
            }
            Ok((updates, follower))
        })
    };
    let acked = upload_concurrently(&publisher, todo.clone(), 4).await;
    done.store(true, Ordering::SeqCst);
    let (updates, follower) = match apt_loop.await.expect("apt loop") {
        Ok(done) => done,
        Err((updates, failure)) => {
            panic!("apt-get update failed during the uploads (after {updates} good): {failure}")
        }
    };
    assert_eq!(acked.len(), todo.len(), "every upload acknowledged");
    assert!(
        updates >= 2,
        "only {updates} apt-get update ran during the uploads"
    );
    eprintln!(
        "{} uploads raced with {updates} apt-get updates",
        acked.len()
    );

    // After a last update apt knows every package, at its version.
    let everything: Vec<Synth> = seed.iter().chain(&todo).map(|(s, _)| s.clone()).collect();
    let problems = publisher.check_suite(&suite_id()).await.unwrap();
    assert!(problems.is_empty(), "check after the race: {problems:?}");
    let check = tokio::task::spawn_blocking({
        let everything = everything.clone();
        let (base, keyring) = (base.clone(), keyring.clone());
        move || {
            // apt revalidates InRelease with If-Modified-Since, which has
            // one-second resolution: an InRelease replaced within the second
            // of the follower's last fetch is answered 304 by S3 servers
            // (Garage here) until a later publish (docs/debian.md). A fresh
            // client fetches it whole.
            drop(follower);
            let follower = AptClient::new(&base, SUITE, &["main", "contrib"], &keyring);
            follower.update().expect("apt-get update after the uploads");
            for synth in &everything {
                let candidate = follower
                    .candidate(&synth.name)
                    .unwrap_or_else(|e| panic!("apt-cache policy {}: {e}", synth.name));
                assert_eq!(
                    candidate.as_deref(),
                    Some(synth.version.as_str()),
                    "apt's candidate for {}",
                    synth.name
                );
            }
        }
    });
    check.await.expect("apt checks");
    assert_listed(&publisher, &everything).await;
}

/// `Publisher::list` shows every package in its component.
async fn assert_listed(publisher: &Publisher, everything: &[Synth]) {
    for component in ["main", "contrib", "non-free"] {
        let repo = RepoId::parse(ORG, "debian", SUITE, component).unwrap();
        let want: BTreeSet<&str> = everything
            .iter()
            .filter(|s| s.component == component)
            .map(|s| s.name.as_str())
            .collect();
        if want.is_empty() {
            continue;
        }
        let listed = publisher.list(&repo, None).await.expect("list");
        let got: BTreeSet<&str> = listed.iter().map(|l| l.record.name.as_str()).collect();
        assert_eq!(got, want, "listed in {component}");
    }
}

// ---- concurrent uploads into components ----------------------------------

async fn concurrent_uploads_to_components_lose_nothing(ctx: Ctx) {
    let stores = ctx.separate().await;
    let publisher = setup_debian(&stores).await;
    let work = ctx.temp_dir();
    let todo = build_set(&work, "many", &["main", "contrib", "non-free"], 6);
    let acked = upload_concurrently(&publisher, todo.clone(), 6).await;
    assert_eq!(acked.len(), todo.len(), "every upload acknowledged");

    // What the published InRelease says, read back from the store.
    let published = published_packages(&stores).await;
    for synth in &acked {
        let arch = if synth.arch == "all" { "all" } else { "amd64" };
        let listed = published
            .get(&format!("{}/binary-{arch}/Packages", synth.component))
            .unwrap_or_else(|| panic!("no {}/binary-{arch}/Packages", synth.component));
        assert_eq!(
            listed.get(&synth.name),
            Some(&synth.version),
            "{} in {}/binary-{arch}/Packages",
            synth.name,
            synth.component
        );
        if arch == "all" {
            // Listed in every arch's Packages too.
            let amd64 = &published[&format!("{}/binary-amd64/Packages", synth.component)];
            assert_eq!(amd64.get(&synth.name), Some(&synth.version));
        }
    }
    let problems = publisher.check_suite(&suite_id()).await.expect("check");
    assert!(problems.is_empty(), "index check: {problems:?}");
    assert_listed(&publisher, &acked).await;
}

/// Every `Packages` file the published `InRelease` lists (path below the
/// suite → package → version), each checked against its `SHA256:` line, and
/// its `.gz` against the same text.
async fn published_packages(stores: &Stores) -> BTreeMap<String, BTreeMap<String, String>> {
    let suite = suite_id();
    let in_release = Key::Dists {
        suite: suite.clone(),
        file: DistsFile::InRelease,
    };
    let (bytes, _) = stores
        .get_bytes_opt(&in_release)
        .await
        .unwrap()
        .expect("InRelease is published");
    let text = signed_text(&bytes).expect("a clearsigned InRelease");
    let mut listed: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut in_sha256 = false;
    for line in text.lines() {
        match line.strip_prefix(' ') {
            Some(entry) if in_sha256 => {
                let fields: Vec<&str> = entry.split_whitespace().collect();
                let [sha, size, path] = fields.as_slice() else {
                    panic!("bad SHA256 line {line:?}");
                };
                listed.insert(
                    (*path).to_owned(),
                    ((*sha).to_owned(), size.parse().unwrap()),
                );
            }
            Some(_) => {}
            None => in_sha256 = line == "SHA256:",
        }
    }
    let dists = format!("{STATIC_PREFIX}{ORG}/debian/dists/{SUITE}");
    let dists = dists.as_str();
    let fetch = |path: String| async move {
        let (bytes, _) = stores
            .public()
            .get_bytes(&format!("{dists}/{path}"))
            .await
            .unwrap_or_else(|e| panic!("get {path}: {e}"));
        bytes
    };
    let mut out = BTreeMap::new();
    for (path, (sha, size)) in &listed {
        if path.ends_with("/Packages") {
            // Listed for apt to check what it inflates; not published.
            continue;
        }
        let bytes = fetch(path.clone()).await;
        assert_eq!(bytes.len() as u64, *size, "size of {path}");
        assert_eq!(
            &hex::encode(Sha256::digest(&bytes)),
            sha,
            "SHA-256 of {path}"
        );
        let Some(plain) = path.strip_suffix(".gz") else {
            continue;
        };
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        let (plain_sha, plain_size) = &listed[plain];
        assert_eq!(unzipped.len() as u64, *plain_size, "size of {plain}");
        assert_eq!(
            &hex::encode(Sha256::digest(&unzipped)),
            plain_sha,
            "{plain}"
        );
        let path = &plain.to_owned();
        let text = String::from_utf8(unzipped).unwrap();
        let mut packages = BTreeMap::new();
        for stanza in text.split("\n\n").filter(|s| !s.trim().is_empty()) {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
                    .unwrap_or_else(|| panic!("no {name} in {stanza}"))
            };
            packages.insert(field("Package:"), field("Version:"));
        }
        out.insert(path.clone(), packages);
    }
    out
}
