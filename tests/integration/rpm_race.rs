//! RPM repositories under concurrency, with several publisher instances on
//! the same stores (as separate service instances are: each its own store
//! connection and its own group commit):
//! - concurrent uploads into one repo arch lose nothing: every package is
//!   listed, `check` is clean, and the published `primary.xml.gz` lists each
//!   with the SHA-256 of the package file published under its location;
//! - the same file uploaded by every instance at once is one record, and
//!   every instance reports the same signed bytes (signing is deterministic);
//! - the real `dnf makecache` in a loop while uploads run never sees a
//!   metadata checksum mismatch or a missing metadata file.
//!
//! The packages are built here with `rpmbuild` (one spec, a subpackage per
//! package: synthetic, tiny).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use packages::publish::{Published, Publisher, Upload};
use packages::repo::Arch;
use packages::storage::{LocalStore, S3Store, Storage};
use packages::stores::Stores;
use sha2::{Digest, Sha256};

use crate::apt_client::require_tool;
use crate::rpm::{REPO, VERSION, arch_dir, dearmor, repo, rpmkeys_check};
use crate::support::{Bucket, Ctx, ORG, Place};

all_backends!(
    concurrent_uploads_lose_nothing,
    same_file_from_every_instance
);

/// How many publisher instances upload at once.
const INSTANCES: usize = 4;

/// One synthetic package.
#[derive(Debug, Clone)]
pub struct Synth {
    /// `NAME`.
    pub name: String,
    /// `x86_64` or `noarch`.
    pub arch: &'static str,
    /// The built file.
    pub path: PathBuf,
}

impl Synth {
    /// The published file name.
    pub fn file_name(&self) -> String {
        format!("{}-1.0-1.{}.rpm", self.name, self.arch)
    }
}

/// Builds `count` packages named `race-<tag>-NN` (every fourth `noarch`)
/// into `dir` with one `rpmbuild -bb` of a spec holding a subpackage each.
pub fn build_rpms(dir: &Path, tag: &str, count: usize) -> Vec<Synth> {
    require_tool("rpmbuild", "rpm");
    let top = dir.join(format!("rpmbuild-{tag}"));
    std::fs::create_dir_all(&top).unwrap();
    let names: Vec<String> = (0..count).map(|i| format!("race-{tag}-{i:02}")).collect();
    let mut spec = String::from(
        "%global debug_package %{nil}\n%define _build_id_links none\n\
         Name: race-batch\nVersion: 1.0\nRelease: 1\nSummary: synthetic batch\n\
         License: CC0-1.0\nAutoReqProv: no\n%description\nnot shipped\n",
    );
    for (i, name) in names.iter().enumerate() {
        spec.push_str(&format!(
            "%package -n {name}\nSummary: synthetic package {i}\n"
        ));
        if i % 4 == 3 {
            spec.push_str("BuildArch: noarch\n");
        }
        spec.push_str(&format!(
            "%description -n {name}\nBuilt by tests/integration/rpm_race.rs.\n"
        ));
    }
    spec.push_str("%install\nmkdir -p %{buildroot}/usr/share/race\n");
    for name in &names {
        spec.push_str(&format!(
            "echo '{name} payload' > %{{buildroot}}/usr/share/race/{name}\n"
        ));
    }
    for name in &names {
        spec.push_str(&format!("%files -n {name}\n/usr/share/race/{name}\n"));
    }
    let spec_path = top.join("race.spec");
    std::fs::write(&spec_path, spec).unwrap();
    let out = Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .args(["--define", "_binary_payload w6.gzdio", "--target", "x86_64"])
        .arg("-bb")
        .arg(&spec_path)
        .env("HOME", &top)
        .output()
        .expect("run rpmbuild");
    assert!(
        out.status.success(),
        "rpmbuild: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut built = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let arch = if i % 4 == 3 { "noarch" } else { "x86_64" };
        let from = top
            .join("RPMS")
            .join(arch)
            .join(format!("{name}-1.0-1.{arch}.rpm"));
        let path = dir.join(from.file_name().unwrap());
        std::fs::rename(&from, &path)
            .unwrap_or_else(|e| panic!("rpmbuild made no {}: {e}", from.display()));
        built.push(Synth { name, arch, path });
    }
    std::fs::remove_dir_all(&top).unwrap();
    built
}

/// An upload of `synth` into the test repository.
pub fn upload_of(synth: &Synth) -> Upload {
    Upload {
        repo: repo(),
        arch: None,
        extra_arches: Vec::new(),
        path: synth.path.clone(),
        display_name: synth.path.file_name().unwrap().to_string_lossy().into(),
    }
}

/// The x86_64 arch of the test repository.
pub fn x86() -> packages::repo::RepoArch {
    repo().arch(Arch::parse("x86_64").unwrap())
}

/// Where the two trees of a test live (public, private).
pub async fn open_places(ctx: &Ctx) -> (Place, Place) {
    let (_, public) = ctx.open(Bucket::Main).await;
    let (_, private) = ctx.open(Bucket::Private).await;
    (public, private)
}

/// Stores on `places` (public, private), or both trees in the public place.
async fn stores_at(ctx: &Ctx, places: &(Place, Place), shared: bool) -> Stores {
    if shared {
        Stores::shared(connect(ctx, &places.0).await)
    } else {
        Stores::separate(connect(ctx, &places.0).await, connect(ctx, &places.1).await)
    }
}

/// A new connection to the store at `place`.
async fn connect(ctx: &Ctx, place: &Place) -> Storage {
    match (&place.dir, &place.bucket) {
        (Some(dir), _) => Storage::local(LocalStore::open(dir).expect("open local store")),
        (None, Some(bucket)) => Storage::s3(
            S3Store::connect(bucket, &place.prefix, &ctx.s3().settings())
                .await
                .expect("connect"),
        ),
        (None, None) => panic!("no in-memory backend here: instances need their own connection"),
    }
}

/// `count` publisher instances on the trees at `places` (both in the public
/// place when `shared`), each with its own store connections; the first
/// creates the org and imports the key.
pub async fn instances(
    ctx: &Ctx,
    places: &(Place, Place),
    shared: bool,
    count: usize,
    public_url: Option<String>,
) -> Vec<Publisher> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let stores = stores_at(ctx, places, shared).await;
        if i == 0 {
            // Creates org `acme` with the test OpenPGP key for `acme/fedora`.
            crate::rpm::setup_fedora(&stores).await;
        }
        out.push(Publisher::new(stores).with_public_url(public_url.clone()));
    }
    out
}

/// Uploads `todo` round-robin from every instance at once (each instance
/// one file at a time); returns what each upload reported.
pub async fn upload_concurrently(
    publishers: &[Publisher],
    todo: &[Synth],
) -> Vec<(Synth, Vec<Published>)> {
    let mut set = tokio::task::JoinSet::new();
    for (t, publisher) in publishers.iter().enumerate() {
        let mine: Vec<Synth> = todo
            .iter()
            .skip(t)
            .step_by(publishers.len())
            .cloned()
            .collect();
        let publisher = publisher.clone();
        set.spawn(async move {
            let mut acked = Vec::new();
            for synth in mine {
                match publisher.upload(&upload_of(&synth)).await {
                    Ok(published) => acked.push((synth, published)),
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

/// A public file, or `None`.
async fn get_public(stores: &Stores, rel: &str) -> Option<Vec<u8>> {
    stores
        .public()
        .get_bytes_opt(&format!("static/{rel}"))
        .await
        .unwrap_or_else(|e| panic!("get {rel}: {e}"))
        .map(|(bytes, _)| bytes.to_vec())
}

/// One package as the published `primary.xml.gz` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// `<checksum type="sha256" pkgid="YES">`.
    pub sha256: String,
    /// `<size package=...>`.
    pub size: u64,
    /// `<location href=...>`.
    pub href: String,
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// Checks the published x86_64 arch as a client would, from the store:
/// `repomd.xml.asc` verifies `repomd.xml` with `gpgv` against the published
/// key, every metadata file it names exists with its checksum and size, and
/// every package `primary.xml.gz` lists exists with its SHA-256 and size.
/// Returns the packages by name.
pub async fn published_primary(stores: &Stores, work: &Path) -> BTreeMap<String, Listed> {
    let os = arch_dir();
    let repomd = get_public(stores, &format!("{os}/repodata/repomd.xml"))
        .await
        .expect("repomd.xml is published");
    let asc = get_public(stores, &format!("{os}/repodata/repomd.xml.asc"))
        .await
        .expect("repomd.xml.asc is published");
    let key_rel = format!(
        "{ORG}/fedora/linux/releases/{VERSION}/{REPO}/RPM-GPG-KEY-{ORG}-fedora-{VERSION}-{REPO}.asc"
    );
    let key = get_public(stores, &key_rel).await.expect("the key");
    let dir = tempfile::tempdir_in(work).unwrap();
    let keyring = dearmor(&key, dir.path());
    std::fs::write(dir.path().join("repomd.xml"), &repomd).unwrap();
    std::fs::write(dir.path().join("repomd.xml.asc"), &asc).unwrap();
    crate::apt_client::gpgv_verify(
        &keyring,
        &dir.path().join("repomd.xml.asc"),
        Some(&dir.path().join("repomd.xml")),
    )
    .expect("repomd.xml.asc verifies the published repomd.xml");
    let text = String::from_utf8(repomd).unwrap();
    let mut primary = None;
    for block in text.split("<data type=\"").skip(1) {
        let kind = block.split('"').next().unwrap();
        let href = between(block, "<location href=\"", "\"").expect("a location");
        let sum = between(block, "<checksum type=\"sha256\">", "<").expect("a checksum");
        let size: u64 = between(block, "<size>", "<").unwrap().parse().unwrap();
        let bytes = get_public(stores, &format!("{os}/{href}"))
            .await
            .unwrap_or_else(|| panic!("{href} named by repomd.xml is missing"));
        assert_eq!(bytes.len() as u64, size, "size of {href}");
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            sum,
            "SHA-256 of {href}"
        );
        if kind == "primary" {
            primary = Some(bytes);
        }
    }
    let mut xml = String::new();
    flate2::read::GzDecoder::new(&primary.expect("repomd.xml names primary")[..])
        .read_to_string(&mut xml)
        .expect("primary.xml.gz inflates");
    let mut out = BTreeMap::new();
    for package in xml.split("<package ").skip(1) {
        let name = between(package, "<name>", "</name>").unwrap().to_owned();
        let listed = Listed {
            sha256: between(package, "<checksum type=\"sha256\" pkgid=\"YES\">", "<")
                .unwrap()
                .to_owned(),
            size: between(package, "<size package=\"", "\"")
                .unwrap()
                .parse()
                .unwrap(),
            href: between(package, "<location href=\"", "\"")
                .unwrap()
                .to_owned(),
        };
        let bytes = get_public(stores, &format!("{os}/{}", listed.href))
            .await
            .unwrap_or_else(|| panic!("{} listed in primary is missing", listed.href));
        assert_eq!(bytes.len() as u64, listed.size, "size of {}", listed.href);
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            listed.sha256,
            "SHA-256 of {}",
            listed.href
        );
        assert!(out.insert(name.clone(), listed).is_none(), "{name} twice");
    }
    out
}

/// Every package of `want` is listed, in `list` and in the published
/// metadata, and `check` finds nothing.
pub async fn assert_everything_published(publisher: &Publisher, want: &[Synth], work: &Path) {
    let problems = publisher.check_rpm_arch(&x86()).await.expect("check");
    assert!(problems.is_empty(), "check: {problems:?}");
    let listed = publisher.list(&repo(), None).await.expect("list");
    let files: BTreeSet<String> = listed.iter().map(|l| l.file.clone()).collect();
    let expected: BTreeSet<String> = want.iter().map(Synth::file_name).collect();
    assert_eq!(files, expected, "listed");
    assert_eq!(listed.len(), want.len(), "listed once each");
    let primary = published_primary(publisher.stores(), work).await;
    let names: BTreeSet<&str> = primary.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = want.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, expected, "in primary.xml.gz");
    for l in &listed {
        let shown = &primary[&l.record.name];
        assert_eq!(shown.sha256, l.record.sha256, "{}", l.record.name);
        assert_eq!(shown.size, l.record.file_size, "{}", l.record.name);
    }
}

// ---- concurrent uploads of distinct packages ------------------------------

async fn concurrent_uploads_lose_nothing(ctx: Ctx) {
    let work = ctx.temp_dir();
    let places = open_places(&ctx).await;
    let publishers = instances(&ctx, &places, false, INSTANCES, None).await;
    let built = build_rpms(&work, "many", 25);
    // The first package brings the x86_64 arch (a noarch one needs an arch).
    let (seed, todo) = built.split_at(1);
    upload_concurrently(&publishers[..1], seed).await;
    let started = std::time::Instant::now();
    let acked = upload_concurrently(&publishers, todo).await;
    eprintln!(
        "{} uploads from {INSTANCES} instances in {:?}",
        acked.len(),
        started.elapsed()
    );
    assert_eq!(acked.len(), todo.len(), "every upload acknowledged");
    for (synth, published) in &acked {
        assert_eq!(published.len(), 1, "{}: {published:?}", synth.name);
        assert!(!published[0].unchanged, "{}: new", synth.name);
        assert_eq!(published[0].arch, "x86_64");
    }
    assert_everything_published(&publishers[0], &built, &work).await;
    // Every instance sees the same.
    for publisher in &publishers[1..] {
        let problems = publisher.check_rpm_arch(&x86()).await.unwrap();
        assert!(problems.is_empty(), "{problems:?}");
    }
}

// ---- the same file from every instance ------------------------------------

async fn same_file_from_every_instance(ctx: Ctx) {
    let work = ctx.temp_dir();
    let places = open_places(&ctx).await;
    let publishers = instances(&ctx, &places, false, INSTANCES, None).await;
    let built = build_rpms(&work, "same", 4);
    let key_asc = work.join("key.asc");
    let mut published_so_far = Vec::new();
    for synth in &built {
        // Every instance uploads this file at once.
        let todo = vec![synth.clone(); INSTANCES];
        let acked = upload_concurrently(&publishers, &todo).await;
        assert_eq!(acked.len(), INSTANCES);
        let shas: BTreeSet<&str> = acked
            .iter()
            .flat_map(|(_, p)| p.iter().map(|p| p.record.sha256.as_str()))
            .collect();
        assert_eq!(
            shas.len(),
            1,
            "{}: every instance signs to the same bytes: {acked:?}",
            synth.name
        );
        assert!(
            acked.iter().any(|(_, p)| p.iter().any(|p| !p.unchanged)),
            "{}: one instance stored it",
            synth.name
        );
        published_so_far.push(synth.clone());
        assert_everything_published(&publishers[0], &published_so_far, &work).await;

        // The published bytes are those every instance reported, signed:
        // rpmkeys accepts them with the repository's key alone.
        let listed = publishers[0].list(&repo(), None).await.unwrap();
        let record = listed
            .iter()
            .find(|l| l.record.name == synth.name)
            .expect("listed");
        let bytes = get_public(
            publishers[0].stores(),
            &format!("{}/{}", arch_dir(), location(synth)),
        )
        .await
        .expect("the package file");
        let sha = hex::encode(Sha256::digest(&bytes));
        assert_eq!(Some(&sha.as_str()), shas.first());
        assert_eq!(sha, record.record.sha256);
        assert_ne!(
            sha,
            hex::encode(Sha256::digest(std::fs::read(&synth.path).unwrap())),
            "the published file carries our signature"
        );
        if !key_asc.exists() {
            let key_rel = format!(
                "{ORG}/fedora/linux/releases/{VERSION}/{REPO}/RPM-GPG-KEY-{ORG}-fedora-{VERSION}-{REPO}.asc"
            );
            let key = get_public(publishers[0].stores(), &key_rel).await.unwrap();
            std::fs::write(&key_asc, key).unwrap();
        }
        let local = work.join(format!("published-{}", synth.file_name()));
        std::fs::write(&local, &bytes).unwrap();
        let (ok, out) = rpmkeys_check(&key_asc, &local);
        assert!(ok, "rpmkeys -K {}: {out}", synth.name);
    }
    // Once more, every instance at once: nothing changes.
    let todo: Vec<Synth> = built.iter().flat_map(|s| vec![s.clone(); 2]).collect();
    let again = upload_concurrently(&publishers, &todo).await;
    assert!(
        again.iter().all(|(_, p)| p.iter().all(|p| p.unchanged)),
        "{again:?}"
    );
    assert_everything_published(&publishers[0], &built, &work).await;
}

/// Where `synth` is published below the arch folder.
pub fn location(synth: &Synth) -> String {
    format!("Packages/r/{}", synth.file_name())
}
