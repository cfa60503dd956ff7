//! Tests of the apt harness itself ([`crate::apt_client`]), against repositories made with
//! Debian's own tools and none of our code: `dpkg-scanpackages`, `apt-ftparchive release`,
//! `gpg` (clearsigned `InRelease`, detached `Release.gpg`, exported key) and a plain
//! `python3 -m http.server`. They prove the harness accepts a good repository and catches
//! every kind of breakage apt must refuse, before our publisher is tested with it.
//!
//! Needs apt, gpgv, gnupg, dpkg-dev and apt-utils (`scripts/test` installs them): without
//! them these tests fail, never skip.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::apt_client::{
    AptClient, StaticHttp, flip_byte, gpgv_verify, overwrite, require_tool, tamper_packages,
};

/// The Debian fixtures (../shared/fixtures/debian) and their pool directories, as reprepro
/// and aptly lay them out (the directory is the source package's name).
const FIXTURES: [(&str, &str); 5] = [
    ("hello_2.10-3_amd64.deb", "h/hello"),
    ("jq_1.6-2.1+deb12u3_amd64.deb", "j/jq"),
    ("libjq1_1.6-2.1+deb12u3_amd64.deb", "j/jq"),
    ("libonig5_6.9.8-1_amd64.deb", "libo/libonig"),
    ("sensible-utils_0.0.17+nmu1_all.deb", "s/sensible-utils"),
];

const JQ_VERSION: &str = "1.6-2.1+deb12u3";

/// `tests/fixtures/deb` when the repository carries the fixtures, else the team's shared
/// copy next to the checkout (`../shared/fixtures/debian`).
fn fixtures_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let own = manifest.join("tests/fixtures/deb");
    if own.is_dir() {
        own
    } else {
        manifest.join("../shared/fixtures/debian")
    }
}

/// A throwaway OpenPGP signing key in its own `GNUPGHOME`; its agent is stopped on drop.
struct GpgKey {
    home: TempDir,
    /// The public key, armored (`.asc`).
    asc: PathBuf,
    /// The public key, binary (`.gpg`).
    gpg: PathBuf,
}

impl GpgKey {
    fn generate(name: &str) -> Self {
        require_tool("gpg", "gnupg");
        // Short path: gpg-agent's socket lives in the home and socket paths are limited.
        let home = tempfile::Builder::new()
            .prefix("gpg-")
            .tempdir_in("/tmp")
            .expect("GNUPGHOME");
        let key = GpgKey {
            asc: home.path().join("key.asc"),
            gpg: home.path().join("key.gpg"),
            home,
        };
        let uid = format!("{name} <{name}@example.invalid>");
        key.gpg_ok(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            &uid,
            "ed25519",
            "sign",
            "never",
        ]);
        let armored = key.gpg_ok(&["--export", "--armor"]);
        fs::write(&key.asc, armored).expect("write key.asc");
        let binary = key.gpg_ok(&["--export"]);
        fs::write(&key.gpg, binary).expect("write key.gpg");
        key
    }

    /// Runs `gpg --batch ARGS` in this key's home; its stdout.
    fn gpg_ok(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .arg("--batch")
            .arg("--yes")
            .args(args)
            .output()
            .expect("run gpg");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Writes `InRelease` (clearsigned) and `Release.gpg` (detached, armored) next to
    /// `release`.
    fn sign_release(&self, release: &Path) {
        let dir = release.parent().expect("suite directory");
        let path = |name: &str| dir.join(name).to_str().expect("utf-8 path").to_string();
        let release = release.to_str().expect("utf-8 path");
        self.gpg_ok(&["--clearsign", "--output", &path("InRelease"), release]);
        self.gpg_ok(&[
            "--detach-sign",
            "--armor",
            "--output",
            &path("Release.gpg"),
            release,
        ]);
    }
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// A signed `stable`/`main`/amd64 repository of the fixtures, served over HTTP.
struct ReferenceRepo {
    dir: TempDir,
    key: GpgKey,
    server: StaticHttp,
}

impl ReferenceRepo {
    fn build() -> Self {
        Self::build_as("stable", "stable", false)
    }

    /// The repository under `dists/stable`, its `Release` saying `Suite: suite` and
    /// `Codename: codename`; with `by_hash`, `Acquire-By-Hash: yes` and each index also under
    /// `by-hash/SHA256/<hex>`, as Debian's archive (and our publisher) lay it out.
    fn build_as(suite: &str, codename: &str, by_hash: bool) -> Self {
        for (tool, package) in [
            ("apt-get", "apt"),
            ("gpgv", "gpgv"),
            ("dpkg-scanpackages", "dpkg-dev"),
            ("apt-ftparchive", "apt-utils"),
        ] {
            require_tool(tool, package);
        }
        let dir = tempfile::Builder::new()
            .prefix("apt-repo-")
            .tempdir()
            .expect("repo dir");
        let root = dir.path();
        for (file, pool_dir) in FIXTURES {
            let target = root.join("pool/main").join(pool_dir);
            fs::create_dir_all(&target).expect("pool dir");
            fs::copy(fixtures_dir().join(file), target.join(file))
                .unwrap_or_else(|e| panic!("copy fixture {file}: {e}"));
        }
        let binary = root.join("dists/stable/main/binary-amd64");
        fs::create_dir_all(&binary).expect("binary-amd64 dir");
        let packages = run_in(root, "dpkg-scanpackages", &["--arch", "amd64", "pool/main"]);
        fs::write(binary.join("Packages"), &packages).expect("write Packages");
        let gz = run_in(&binary, "gzip", &["-9", "-n", "-c", "Packages"]);
        fs::write(binary.join("Packages.gz"), gz).expect("write Packages.gz");
        let (suite, codename, by_hash_field) = (
            format!("APT::FTPArchive::Release::Suite={suite}"),
            format!("APT::FTPArchive::Release::Codename={codename}"),
            format!(
                "APT::FTPArchive::Release::Acquire-By-Hash={}",
                if by_hash { "yes" } else { "no" }
            ),
        );
        let release = run_in(
            root,
            "apt-ftparchive",
            &[
                "-o",
                "APT::FTPArchive::Release::Origin=Harness",
                "-o",
                "APT::FTPArchive::Release::Label=Harness",
                "-o",
                &suite,
                "-o",
                &codename,
                "-o",
                "APT::FTPArchive::Release::Architectures=amd64",
                "-o",
                "APT::FTPArchive::Release::Components=main",
                "-o",
                &by_hash_field,
                // apt fetches by-hash/<strongest hash listed>: with by-hash, list MD5Sum and
                // SHA256 only, as Debian's archive does (else apt asks for by-hash/SHA512).
                "-o",
                &format!("APT::FTPArchive::Release::SHA1={}", !by_hash),
                "-o",
                &format!("APT::FTPArchive::Release::SHA512={}", !by_hash),
                "release",
                "dists/stable",
            ],
        );
        let release_path = root.join("dists/stable/Release");
        fs::write(&release_path, release).expect("write Release");
        if by_hash {
            let dir = binary.join("by-hash/SHA256");
            fs::create_dir_all(&dir).expect("by-hash dir");
            for name in ["Packages", "Packages.gz"] {
                let bytes = fs::read(binary.join(name)).expect("read index");
                fs::write(dir.join(hex::encode(Sha256::digest(&bytes))), bytes)
                    .expect("write by-hash copy");
            }
        }
        let key = GpgKey::generate("harness");
        key.sign_release(&release_path);
        let server = StaticHttp::start(root);
        ReferenceRepo { dir, key, server }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A fresh client of `stable main`, trusting `key` (a `.asc` or `.gpg` file).
    fn client_with(&self, key: &Path) -> AptClient {
        AptClient::new(&self.server.url(), "stable", &["main"], key)
    }

    /// A fresh client of `suite main`, trusting the repository's key.
    fn client_of(&self, suite: &str) -> AptClient {
        AptClient::new(&self.server.url(), suite, &["main"], &self.key.asc)
    }

    fn client(&self) -> AptClient {
        self.client_with(&self.key.asc)
    }
}

/// Runs a tool in `dir`; its stdout (panics with stderr on failure).
fn run_in(dir: &Path, program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn file_names(paths: &[PathBuf]) -> BTreeSet<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn assert_mentions(text: &str, any_of: &[&str]) {
    assert!(
        any_of.iter().any(|s| text.contains(s)),
        "expected one of {any_of:?} in:\n{text}"
    );
}

#[test]
fn update_passes_and_jq_pulls_in_its_dependencies() {
    let repo = ReferenceRepo::build();
    let apt = repo.client();
    apt.update().expect("apt-get update on a good repo");
    assert_eq!(apt.candidate("jq").unwrap().as_deref(), Some(JQ_VERSION));
    assert!(apt.policy("jq").unwrap().contains(&repo.server.url()));
    let debs = apt.download(&["jq"]).expect("download jq");
    let want: BTreeSet<String> = [
        "jq_1.6-2.1+deb12u3_amd64.deb",
        "libjq1_1.6-2.1+deb12u3_amd64.deb",
        "libonig5_6.9.8-1_amd64.deb",
    ]
    .map(String::from)
    .into();
    assert_eq!(file_names(&debs), want);
    // The bytes are the pool's.
    let jq = fs::read(repo.path("pool/main/j/jq/jq_1.6-2.1+deb12u3_amd64.deb")).unwrap();
    assert!(debs.iter().any(|d| fs::read(d).unwrap() == jq));
    // Nothing stays behind from one download to the next.
    let debs = apt.download(&["hello"]).expect("download hello");
    assert_eq!(
        file_names(&debs),
        BTreeSet::from(["hello_2.10-3_amd64.deb".to_string()])
    );
}

#[test]
fn an_all_package_downloads_with_a_binary_key() {
    let repo = ReferenceRepo::build();
    let apt = repo.client_with(&repo.key.gpg);
    apt.update()
        .expect("apt-get update, Signed-By a binary .gpg key");
    assert!(
        apt.show("sensible-utils")
            .unwrap()
            .contains("Architecture: all")
    );
    let debs = apt
        .download(&["sensible-utils"])
        .expect("download an all package");
    assert_eq!(
        file_names(&debs),
        BTreeSet::from(["sensible-utils_0.0.17+nmu1_all.deb".to_string()])
    );
}

#[test]
fn gpgv_checks_both_signatures_with_either_key_form() {
    let repo = ReferenceRepo::build();
    let (inrelease, sig, release) = (
        repo.path("dists/stable/InRelease"),
        repo.path("dists/stable/Release.gpg"),
        repo.path("dists/stable/Release"),
    );
    for key in [&repo.key.asc, &repo.key.gpg] {
        gpgv_verify(key, &inrelease, None).expect("gpgv InRelease");
        gpgv_verify(key, &sig, Some(&release)).expect("gpgv Release.gpg");
    }
    let other = GpgKey::generate("other");
    gpgv_verify(&other.asc, &inrelease, None).expect_err("gpgv with the wrong key");
    flip_byte(&release, 10);
    gpgv_verify(&repo.key.asc, &sig, Some(&release)).expect_err("gpgv on a changed Release");
}

#[test]
fn tampered_packages_fails_update() {
    let repo = ReferenceRepo::build();
    let changed = tamper_packages(&repo.path("dists/stable/main/binary-amd64"));
    assert_eq!(changed.len(), 2, "Packages and Packages.gz: {changed:?}");
    let err = repo.client().update_expect_failure();
    assert_mentions(&err, &["Hash Sum mismatch", "File has unexpected size"]);
}

#[test]
fn by_hash_indexes_are_used_and_tampering_them_fails() {
    let repo = ReferenceRepo::build_as("stable", "stable", true);
    let binary = repo.path("dists/stable/main/binary-amd64");
    // Only the by-hash copies are left: apt must fetch those.
    fs::remove_file(binary.join("Packages")).unwrap();
    fs::remove_file(binary.join("Packages.gz")).unwrap();
    let apt = repo.client();
    apt.update().expect("update through by-hash");
    assert_eq!(apt.candidate("jq").unwrap().as_deref(), Some(JQ_VERSION));
    let changed = tamper_packages(&binary);
    assert_eq!(changed.len(), 2, "both by-hash copies: {changed:?}");
    let err = repo.client().update_expect_failure();
    assert_mentions(&err, &["Hash Sum mismatch", "File has unexpected size"]);
}

#[test]
fn tampered_inrelease_fails_update() {
    let repo = ReferenceRepo::build();
    let before = repo.client();
    before.update().expect("update before tampering");
    let inrelease = repo.path("dists/stable/InRelease");
    let text = fs::read_to_string(&inrelease).unwrap();
    let at = text.find("Date: ").expect("Date field in InRelease") + 6;
    flip_byte(&inrelease, at);
    // A new client refuses the repo; one that knew it keeps its old indexes but warns,
    // exit status 0: only the `W:` line shows it, which the harness makes fatal.
    for apt in [repo.client(), before] {
        let err = apt.update_expect_failure();
        assert_mentions(&err, &["BADSIG"]);
    }
}

#[test]
fn tampered_pool_file_fails_download() {
    let repo = ReferenceRepo::build();
    let apt = repo.client();
    apt.update().expect("update");
    let deb = repo.path("pool/main/libo/libonig/libonig5_6.9.8-1_amd64.deb");
    let len = fs::metadata(&deb).unwrap().len() as usize;
    flip_byte(&deb, len / 2);
    // Same size, other bytes: apt compares the hash, not just the size.
    let err = apt.download_expect_failure(&["jq"]);
    assert_mentions(&err, &["Hash Sum mismatch"]);
    // One byte longer.
    let mut longer = fs::read(&deb).unwrap();
    longer.push(b'x');
    overwrite(&deb, &longer);
    let err = apt.download_expect_failure(&["libonig5"]);
    assert_mentions(&err, &["Hash Sum mismatch", "File has unexpected size"]);
}

#[test]
fn suite_aliases_pass_and_a_conflicting_suite_is_fatal() {
    // As Debian does it: `dists/stable` is the codename's directory under another name; its
    // Release names both, so apt accepts it by either name without a warning.
    let repo = ReferenceRepo::build_as("stable", "bookworm", false);
    std::os::unix::fs::symlink("stable", repo.path("dists/bookworm")).unwrap();
    for suite in ["stable", "bookworm"] {
        let apt = repo.client_of(suite);
        apt.update()
            .unwrap_or_else(|e| panic!("update through suite {suite}: {e}"));
        assert_eq!(apt.candidate("jq").unwrap().as_deref(), Some(JQ_VERSION));
        let debs = apt.download(&["jq"]).expect("download through an alias");
        assert_eq!(debs.len(), 3, "{debs:?}");
    }
    // A suite directory whose Release names neither: apt only warns ("Conflicting
    // distribution", exit status 0); the harness makes that a failure.
    std::os::unix::fs::symlink("stable", repo.path("dists/testing")).unwrap();
    let err = repo.client_of("testing").update_expect_failure();
    assert_mentions(&err, &["Conflicting distribution"]);
}

#[test]
fn unsigned_repo_fails_update() {
    let repo = ReferenceRepo::build();
    fs::remove_file(repo.path("dists/stable/InRelease")).unwrap();
    fs::remove_file(repo.path("dists/stable/Release.gpg")).unwrap();
    let err = repo.client().update_expect_failure();
    assert_mentions(&err, &["is not signed"]);
}

#[test]
fn repo_signed_by_another_key_fails_update() {
    let repo = ReferenceRepo::build();
    let other = GpgKey::generate("other");
    let err = repo.client_with(&other.asc).update_expect_failure();
    assert_mentions(&err, &["NO_PUBKEY", "is not signed"]);
}

#[test]
fn client_configuration_stays_in_its_directory() {
    let repo = ReferenceRepo::build();
    let apt = repo.client();
    let out = apt.run("apt-config", &["dump"]).expect("apt-config dump");
    let dump = String::from_utf8_lossy(&out.stdout);
    let root = apt.root().to_str().unwrap();
    for name in [
        "Dir",
        "Dir::Etc",
        "Dir::Etc::main",
        "Dir::Etc::parts",
        "Dir::Etc::sourcelist",
        "Dir::Etc::sourceparts",
        "Dir::Etc::trusted",
        "Dir::Etc::trustedparts",
        "Dir::Etc::preferences",
        "Dir::Etc::preferencesparts",
        "Dir::State",
        "Dir::State::lists",
        "Dir::State::status",
        "Dir::Cache",
        "Dir::Cache::archives",
        "Dir::Log",
    ] {
        let line = dump
            .lines()
            .find(|l| l.split_once(' ').is_some_and(|(k, _)| k == name))
            .unwrap_or_else(|| panic!("{name} missing from apt-config dump:\n{dump}"));
        assert!(line.contains(root), "{line} is outside {root}");
    }
    for setting in [
        "APT::Architecture \"amd64\";",
        "Acquire::Languages:: \"none\";",
    ] {
        assert!(dump.contains(setting), "{setting} missing:\n{dump}");
    }
    let sources =
        fs::read_to_string(apt.root().join("etc/apt/sources.list.d/source-1.sources")).unwrap();
    assert!(sources.contains("Signed-By: "), "{sources}");
    assert!(!sources.contains("trusted"), "{sources}");
}
