//! Racing publishers never lose an acknowledged package: many concurrent CLI
//! processes (separate OS processes, as CI jobs are) publish into one repo arch,
//! and into several repos and arches, on every backend. Every package a
//! process reported as published must be in the final signed index (checked
//! with `openssl` and an independent parser), exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
        }
        (None, None) => unreachable!("a place is a directory or a bucket"),
    }
    cmd.env("RUST_LOG", "warn");
    cmd
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
}

/// Runs the jobs as concurrent CLI processes; returns `(repo, file name)` of
/// every package a process acknowledged (a line ending in `-> ORG/...`).
fn run_jobs(ctx: &Ctx, place: &Place, jobs: Vec<Job>) -> BTreeSet<(String, String)> {
    let children: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let mut cmd = cli(ctx, place);
            cmd.args([
                "upload",
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
            (job.version, job.repo, child)
        })
        .collect();
    let mut acked = BTreeSet::new();
    let mut failures = Vec::new();
    for (version, repo, child) in children {
        let out = child.wait_with_output().expect("wait for packages");
        if !out.status.success() {
            failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
            continue;
        }
        let published: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).expect("--json output");
        for p in published {
            let file = p["record"]["name"].as_str().unwrap().to_owned()
                + "-"
                + p["record"]["version"].as_str().unwrap()
                + ".apk";
            acked.insert((
                format!("{version}/{repo}/{}", p["arch"].as_str().unwrap()),
                file,
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "some uploads failed:\n{}",
        failures.join("\n")
    );
    acked
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
        let (storage, place) = ctx.open(crate::support::Bucket::Main).await;
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
    let (storage, place) = ctx.open(crate::support::Bucket::Main).await;
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
            });
        }
    }
    let acked = run_jobs(&ctx, &place, jobs);
    assert_eq!(acked.len(), PACKAGES / 4 * 4);
    let repo_arches = acked.iter().map(|(ra, _)| ra.clone()).collect();
    let listed = published(&repo_arches, &t).await;
    assert_all_present(&acked, &listed);
}

backend_tests!([local, garage, moto] one_repo_arch, many_repos_and_arches);
