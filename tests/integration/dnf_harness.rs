//! Tests of the dnf harness itself ([`crate::dnf_client`]), against repositories made with
//! the distributions' own tools and none of our code: Debian's `createrepo_c`, `gpg`
//! (throwaway key, detached armored `repodata/repomd.xml.asc`) and a plain
//! `python3 -m http.server`. They prove the harness installs from a good repository and
//! catches every kind of breakage dnf must refuse, before our publisher is tested with it.
//!
//! The signed fixtures (`tests/fixtures/rpm/signed`) are signed by a key whose private half
//! is gone, so each client trusts two keys: the repository's (for `repomd.xml`) and
//! `signed/signing-key.asc` (for the packages).
//!
//! Needs dnf, rpm, createrepo-c and gnupg (`scripts/test` installs them) and root (dnf
//! installs only as root): without them these tests fail, never skip.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use packages::storage::{PutMode, PutOptions};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::apt_client::{StaticHttp, dearmor, flip_byte, overwrite};
use crate::dnf_client::{
    DnfClient, REPO_ID, check_repo_file, metadata_file, names, nevras, problem_lines,
    repomd_locations, require_tool,
};
use crate::support::{Bucket, Ctx, url_path};

backend_tests!([garage] dnf_installs_from_the_garage_website);

const ALL: [&str; 4] = [
    "acc-data-0.9-1.noarch.rpm",
    "acc-hello-1.0.1-1.noarch.rpm",
    "acc-lib-1.2.0-1.x86_64.rpm",
    "acc-tool-2.0-1.x86_64.rpm",
];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpm")
}

/// The public key that signed `tests/fixtures/rpm/signed/*.rpm`.
fn package_key() -> PathBuf {
    fixtures_dir().join("signed/signing-key.asc")
}

/// A throwaway OpenPGP signing key in its own `GNUPGHOME`; its agent is stopped on drop.
struct GpgKey {
    home: TempDir,
    /// The public key, armored.
    asc: PathBuf,
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
            home,
        };
        let uid = format!("{name} <{name}@example.invalid>");
        key.gpg(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            &uid,
            "ed25519",
            "sign",
            "never",
        ]);
        let armored = key.gpg(&["--export", "--armor"]);
        fs::write(&key.asc, armored).expect("write key.asc");
        key
    }

    /// Runs `gpg --batch --yes ARGS` in this key's home; its stdout.
    fn gpg(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--yes"])
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

    /// Writes `repomd.xml.asc`, a detached armored signature, next to `repomd`.
    fn sign_repomd(&self, repomd: &Path) {
        let sig = repomd.with_extension("xml.asc");
        let (sig, repomd) = (sig.to_str().unwrap(), repomd.to_str().unwrap());
        self.gpg(&["--detach-sign", "--armor", "--output", sig, repomd]);
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

/// A repository made by `createrepo_c` from fixture packages, `repomd.xml` signed by a
/// throwaway key, served over HTTP.
struct ReferenceRepo {
    dir: TempDir,
    key: GpgKey,
    server: StaticHttp,
}

impl ReferenceRepo {
    /// The four signed fixtures.
    fn signed() -> Self {
        Self::build("signed", &ALL)
    }

    /// The packages `files` of `tests/fixtures/rpm/<sub>` (`signed` or `.`, the unsigned
    /// ones) under `Packages/`.
    fn build(sub: &str, files: &[&str]) -> Self {
        require_tool("createrepo_c", "createrepo-c");
        let dir = tempfile::Builder::new()
            .prefix("rpm-repo-")
            .tempdir()
            .expect("repo dir");
        fs::create_dir(dir.path().join("Packages")).expect("Packages dir");
        let repo = ReferenceRepo {
            key: GpgKey::generate("harness"),
            server: StaticHttp::start(dir.path()),
            dir,
        };
        repo.add(sub, files);
        repo
    }

    /// Copies more fixtures in and regenerates the metadata (`createrepo_c --update`), signed.
    fn add(&self, sub: &str, files: &[&str]) {
        for file in files {
            fs::copy(
                fixtures_dir().join(sub).join(file),
                self.path(&format!("Packages/{file}")),
            )
            .unwrap_or_else(|e| panic!("copy fixture {file}: {e}"));
        }
        let out = Command::new("createrepo_c")
            .args(["--update", "--no-database", "--quiet"])
            .arg(self.dir.path())
            .output()
            .expect("run createrepo_c");
        assert!(
            out.status.success(),
            "createrepo_c: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.key.sign_repomd(&self.path("repodata/repomd.xml"));
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The metadata file of `kind` (`primary`, `filelists`, `other`), as repomd.xml names it.
    fn metadata(&self, kind: &str) -> PathBuf {
        metadata_file(self.dir.path(), kind)
    }

    /// Recompresses every metadata file `repomd.xml` lists from gzip to zstd (`zstd -19`),
    /// content-named again (`<sha256>-<type>.xml.zst`), rewrites `repomd.xml` to match and
    /// signs it again; the gzip files are removed. Debian's createrepo_c cannot write zstd.
    fn recompress_zstd(&self) {
        require_tool("zstd", "zstd");
        let repomd_path = self.path("repodata/repomd.xml");
        let mut repomd = fs::read_to_string(&repomd_path).unwrap();
        for (kind, href) in repomd_locations(&repomd.clone()) {
            let gz = self.path(&href);
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(fs::File::open(&gz).unwrap())
                .read_to_end(&mut raw)
                .unwrap_or_else(|e| panic!("gunzip {href}: {e}"));
            let plain = gz.with_extension("");
            fs::write(&plain, &raw).unwrap();
            let zst = gz.with_extension("zst");
            let out = Command::new("zstd")
                .args(["-q", "-19", "-f", "--rm"])
                .arg(&plain)
                .arg("-o")
                .arg(&zst)
                .output()
                .expect("run zstd");
            assert!(out.status.success(), "zstd: {out:?}");
            let bytes = fs::read(&zst).unwrap();
            let hex = hex::encode(Sha256::digest(&bytes));
            let name = format!("repodata/{hex}-{kind}.xml.zst");
            fs::rename(&zst, self.path(&name)).unwrap();
            fs::remove_file(&gz).unwrap();
            // Rewrite this <data> block: location, checksum, size (open-* stay: same XML).
            let start = repomd.find(&format!("<data type=\"{kind}\">")).unwrap();
            let end = start + repomd[start..].find("</data>").unwrap();
            let block = &repomd[start..end];
            let old_sum = between(block, "<checksum type=\"sha256\">", "<");
            let old_size = between(block, "<size>", "<");
            let new_block = block
                .replace(&href, &name)
                .replace(&format!(">{old_sum}<"), &format!(">{hex}<"))
                .replace(
                    &format!("<size>{old_size}</size>"),
                    &format!("<size>{}</size>", bytes.len()),
                );
            repomd.replace_range(start..end, &new_block);
        }
        overwrite(&repomd_path, repomd.as_bytes());
        self.key.sign_repomd(&repomd_path);
    }

    fn url(&self) -> String {
        self.server.url()
    }

    /// A fresh client trusting the repository's key and the packages' key.
    fn client(&self) -> DnfClient {
        DnfClient::new(&self.url(), &[&self.key.asc, &package_key()])
    }
}

/// The text of `s` after `start` up to the next `end`.
fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s.find(start).unwrap_or_else(|| panic!("no {start} in {s}")) + start.len();
    let len = s[from..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end} after {start}"));
    &s[from..from + len]
}

fn assert_mentions(text: &str, any_of: &[&str]) {
    assert!(
        any_of.iter().any(|s| text.contains(s)),
        "expected one of {any_of:?} in:\n{text}"
    );
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn install_pulls_in_dependencies_into_the_installroot() {
    let repo = ReferenceRepo::signed();
    let dnf = repo.client();
    dnf.makecache().expect("dnf makecache on a good repo");
    // The cache and the repo's GnuPG home are inside the client's directory.
    let cached: Vec<_> = fs::read_dir(dnf.cache_dir()).unwrap().collect();
    assert!(
        !cached.is_empty(),
        "empty cache {}",
        dnf.cache_dir().display()
    );
    assert_eq!(
        dnf.repoquery(&[]).unwrap(),
        strings(&[
            "acc-data-0.9-1.noarch",
            "acc-hello-1.0.1-1.noarch",
            "acc-lib-1.2.0-1.x86_64",
            "acc-tool-2.0-1.x86_64"
        ])
    );
    let tx = dnf.install(&["acc-tool"]).expect("install acc-tool");
    let all = strings(&[
        "acc-data-0.9-1.noarch",
        "acc-hello-1.0.1-1.noarch",
        "acc-lib-1.2.0-1.x86_64",
        "acc-tool-2.0-1.x86_64",
    ]);
    assert_eq!(tx.downloaded, all);
    assert_eq!(tx.installed, all);
    assert_eq!(dnf.installed(), all);
    for name in ["acc-data", "acc-hello", "acc-lib", "acc-tool"] {
        let readme = dnf.installroot().join(format!("usr/share/{name}/README"));
        assert!(readme.is_file(), "{} not installed", readme.display());
    }
    // The downloads are the repository's bytes, signed by the packages' key.
    for file in &tx.files {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            fs::read(file).unwrap(),
            fs::read(repo.path(&format!("Packages/{name}"))).unwrap()
        );
        dnf.checksig(file).expect("rpmkeys -K of a download");
    }
}

#[test]
fn a_second_run_sees_the_changed_repo() {
    let repo = ReferenceRepo::build("signed", &ALL[..3]);
    let dnf = repo.client();
    let tx = dnf.install(&["acc-hello"]).expect("install acc-hello");
    assert_eq!(tx.installed_names(), strings(&["acc-hello", "acc-lib"]));
    let err = dnf.install_expect_failure(&["acc-tool"]);
    assert_mentions(&err, &["No match for argument: acc-tool"]);
    repo.add("signed", &ALL[3..]);
    // Only what is missing: acc-hello and acc-lib are installed already.
    let tx = dnf
        .install(&["acc-tool"])
        .expect("install acc-tool after the change");
    assert_eq!(tx.installed_names(), strings(&["acc-data", "acc-tool"]));
    assert_eq!(tx.downloaded_names(), strings(&["acc-data", "acc-tool"]));
}

#[test]
fn zstd_metadata_is_read() {
    // The issue allows gzip or zstd metadata: Debian's dnf (librepo, libsolv) reads both.
    let repo = ReferenceRepo::signed();
    repo.recompress_zstd();
    let primary = metadata_file(repo.dir.path(), "primary");
    assert!(primary.to_string_lossy().ends_with("-primary.xml.zst"));
    let tx = repo
        .client()
        .install(&["acc-hello"])
        .expect("install with zstd metadata");
    assert_eq!(tx.installed_names(), strings(&["acc-hello", "acc-lib"]));
}

#[test]
fn download_only_checks_signatures_and_installs_nothing() {
    let repo = ReferenceRepo::signed();
    // Both keys in binary form this time.
    let bin_dir = tempfile::tempdir().unwrap();
    let keys: Vec<PathBuf> = [&repo.key.asc, &package_key()]
        .iter()
        .enumerate()
        .map(|(n, asc)| {
            let path = bin_dir.path().join(format!("key-{n}.gpg"));
            fs::write(&path, dearmor(&fs::read(asc).unwrap())).unwrap();
            path
        })
        .collect();
    let dnf = DnfClient::new(&repo.url(), &[&keys[0], &keys[1]]);
    let tx = dnf.download(&["acc-hello"]).expect("download acc-hello");
    assert_eq!(tx.downloaded_names(), strings(&["acc-hello", "acc-lib"]));
    assert!(tx.installed.is_empty(), "{tx:?}");
    assert!(dnf.installed().is_empty());
    for file in &tx.files {
        let report = dnf.checksig(file).expect("rpmkeys -K");
        assert!(report.contains("23524c15"), "{report}");
    }
}

#[test]
fn tampered_repomd_is_refused() {
    let repo = ReferenceRepo::signed();
    let known = repo.client();
    known.makecache().expect("makecache before tampering");
    let repomd = repo.path("repodata/repomd.xml");
    let text = fs::read_to_string(&repomd).unwrap();
    let at = text.find("<revision>").expect("a revision in repomd.xml") + 10;
    flip_byte(&repomd, at);
    // A client holding the old metadata and a new one both refuse it.
    for dnf in [known, repo.client()] {
        let err = dnf.makecache_expect_failure();
        assert_mentions(&err, &["Bad GPG signature"]);
    }
    // Without its signature, or signed by a key the client does not trust.
    let sig = repo.path("repodata/repomd.xml.asc");
    fs::remove_file(&sig).unwrap();
    let err = repo.client().makecache_expect_failure();
    assert_mentions(&err, &["GPG signature is not available"]);
    let other = GpgKey::generate("other");
    other.sign_repomd(&repomd);
    let err = repo.client().makecache_expect_failure();
    assert_mentions(&err, &["GPG signature", "GPG verification"]);
}

#[test]
fn tampered_primary_is_refused() {
    let repo = ReferenceRepo::signed();
    let primary = repo.metadata("primary");
    let len = fs::metadata(&primary).unwrap().len() as usize;
    flip_byte(&primary, len / 2);
    let err = repo.client().makecache_expect_failure();
    assert_mentions(&err, &["checksum doesn't match"]);
}

#[test]
fn tampered_rpm_is_refused() {
    let repo = ReferenceRepo::signed();
    let dnf = repo.client();
    dnf.makecache().expect("makecache");
    let rpm = repo.path("Packages/acc-lib-1.2.0-1.x86_64.rpm");
    let bytes = fs::read(&rpm).unwrap();
    flip_byte(&rpm, bytes.len() / 2);
    let err = dnf.install_expect_failure(&["acc-hello"]);
    assert_mentions(&err, &["checksum doesn't match"]);
    assert!(dnf.installed().is_empty());
    // The metadata and package re-made around the changed file (a consistent but forged
    // repository): the package no longer verifies ("Problem opening package").
    let mut forged = bytes.clone();
    let n = forged.len();
    forged[n - 100] ^= 0x01;
    overwrite(&rpm, &forged);
    repo.add("signed", &[]);
    let err = repo.client().install_expect_failure(&["acc-lib"]);
    assert_mentions(&err, &["GPG check FAILED"]);
}

#[test]
fn unsigned_packages_are_refused() {
    let repo = ReferenceRepo::build(".", &ALL);
    let dnf = repo.client();
    let err = dnf.install_expect_failure(&["acc-data"]);
    assert_mentions(&err, &["is not signed"]);
    assert!(dnf.installed().is_empty());
}

#[test]
fn a_published_repo_file_is_used_as_it_is() {
    let repo = ReferenceRepo::signed();
    fs::copy(&repo.key.asc, repo.path("repo-key.asc")).unwrap();
    fs::copy(package_key(), repo.path("package-key.asc")).unwrap();
    let text = format!(
        "[acc-published]\nname=Published\nbaseurl={url}/\nenabled=1\ngpgcheck=1\n\
         repo_gpgcheck=1\ngpgkey={url}/repo-key.asc {url}/package-key.asc\n",
        url = repo.url()
    );
    fs::write(repo.path("acc.repo"), &text).unwrap();
    let dnf = DnfClient::from_repo_url(&format!("{}/acc.repo", repo.url()));
    assert_eq!(dnf.repo_ids(), ["acc-published"]);
    assert_eq!(fs::read_to_string(dnf.repo_file()).unwrap(), text);
    let tx = dnf
        .install(&["acc-data"])
        .expect("install a noarch package");
    assert_eq!(tx.installed, strings(&["acc-data-0.9-1.noarch"]));
    // A .repo file that turns a check off (or lacks a key) is not accepted.
    assert!(check_repo_file(&text.replace("repo_gpgcheck=1", "repo_gpgcheck=0")).is_err());
    assert!(check_repo_file(&text.replace("gpgcheck=1\nrepo", "gpgcheck=0\nrepo")).is_err());
    let no_key: String = text
        .lines()
        .filter(|l| !l.starts_with("gpgkey"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(check_repo_file(&no_key).is_err());
    assert_eq!(check_repo_file(&text).unwrap(), ["acc-published"]);
    let own = repo.client();
    assert_eq!(own.repo_ids(), [REPO_ID]);
    // A file that lets dnf skip a broken repository: dnf exits 0 on a bad signature, only
    // its output tells; the harness still fails.
    let lenient = DnfClient::from_repo_text(&format!("{text}skip_if_unavailable=1\n"));
    flip_byte(&repo.path("repodata/repomd.xml"), 60);
    let failure = lenient
        .makecache()
        .expect_err("makecache of a tampered repo");
    assert_eq!(failure.status, Some(0), "{failure}");
    assert_mentions(&failure.to_string(), &["Bad GPG signature"]);
    assert_mentions(&failure.to_string(), &["Ignoring repositories"]);
}

#[test]
fn output_and_repomd_parsing() {
    // No dnf here: the pure helpers the harness judges dnf's output with.
    let output = "harness   1.2 MB/s | 1.3 kB  00:00\n\
        Importing GPG key 0x23524C15:\n\
        Key imported successfully\n\
        [MIRROR] a.rpm: Downloading successful, but checksum doesn't match.\n\
        Package b.rpm is not signed\n\
        warning: c.rpm: Header V4 RSA/SHA256 Signature, key ID 23524c15: NOKEY\n\
        Error: GPG check FAILED\n\
        Complete!\n";
    let problems = problem_lines(output);
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(
        problems
            .iter()
            .all(|l| !l.contains("Importing") && !l.contains("Key imported"))
    );
    // `BAD` and `NOKEY` are words of rpm's verdicts, not parts of a fingerprint (a random
    // harness key once had `BADD` in its own and failed a good install).
    let fingerprint = " Fingerprint: B9F0 C91F BADD 9450 E7A4 FCC7 E3FA CE2B C541 E7BA
";
    assert!(problem_lines(fingerprint).is_empty());
    let bad = "c.rpm: Header V4 RSA/SHA256 Signature, key ID 23524c15: BAD
";
    assert_eq!(problem_lines(bad).len(), 1);
    let list = nevras("acc-tool (none) 2.0 1 x86_64\nzed 0 1 2 noarch\nepo 3 1.0 1.fc39 aarch64\n");
    assert_eq!(
        list,
        strings(&[
            "acc-tool-2.0-1.x86_64",
            "zed-1-2.noarch",
            "epo-3:1.0-1.fc39.aarch64"
        ])
    );
    assert_eq!(names(&list), strings(&["acc-tool", "epo", "zed"]));
    let repomd = r#"<repomd><revision>1</revision>
<data type="primary"><checksum type="sha256">ab</checksum>
  <location href="repodata/ab-primary.xml.gz"/></data>
<data type="other"><location href="repodata/cd-other.xml.zst"/><size>3</size></data>
</repomd>"#;
    assert_eq!(
        repomd_locations(repomd),
        vec![
            (
                "primary".to_string(),
                "repodata/ab-primary.xml.gz".to_string()
            ),
            ("other".to_string(), "repodata/cd-other.xml.zst".to_string()),
        ]
    );
}

/// The same reference repository uploaded as it is into Garage's website bucket: dnf
/// installs from the website endpoint (`http://localhost:PORT/<prefix>/...`), and refuses it
/// once `repomd.xml` is changed there.
async fn dnf_installs_from_the_garage_website(ctx: Ctx) {
    let web = ctx
        .s3()
        .web
        .clone()
        .expect("PACKAGES_TEST_GARAGE_WEB is set");
    let (store, place) = ctx.open(Bucket::Main).await;
    let repo = ReferenceRepo::signed();
    fs::copy(package_key(), repo.path("package-key.asc")).unwrap();
    fs::copy(&repo.key.asc, repo.path("repo-key.asc")).unwrap();
    let mut files = vec![PathBuf::from("repodata/repomd.xml.asc")];
    for sub in ["Packages", "repodata"] {
        for entry in fs::read_dir(repo.path(sub)).unwrap() {
            files.push(Path::new(sub).join(entry.unwrap().file_name()));
        }
    }
    files.sort();
    files.dedup();
    files.extend(["package-key.asc", "repo-key.asc"].map(PathBuf::from));
    for rel in &files {
        let key = format!("rpm/{}", rel.display());
        let bytes = fs::read(repo.path(rel.to_str().unwrap())).unwrap();
        store
            .put(
                &key,
                bytes.into(),
                &PutOptions::default(),
                PutMode::Overwrite,
            )
            .await
            .unwrap_or_else(|e| panic!("upload {key}: {e}"));
    }
    let base = format!("{web}/{}", url_path(&format!("{}/rpm", place.prefix)));
    let text = format!(
        "[garage]\nname=Garage website\nbaseurl={base}/\ngpgcheck=1\nrepo_gpgcheck=1\n\
         gpgkey={base}/repo-key.asc {base}/package-key.asc\n"
    );
    let dnf = tokio::task::spawn_blocking(move || {
        let dnf = DnfClient::from_repo_text(&text);
        let tx = dnf
            .install(&["acc-tool"])
            .expect("install from the Garage website");
        assert_eq!(
            tx.installed_names(),
            strings(&["acc-data", "acc-hello", "acc-lib", "acc-tool"])
        );
        dnf
    })
    .await
    .unwrap();
    let mut repomd = fs::read(repo.path("repodata/repomd.xml")).unwrap();
    let at = repomd.len() / 2;
    repomd[at] ^= 0x01;
    store
        .put(
            "rpm/repodata/repomd.xml",
            repomd.into(),
            &PutOptions::default(),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || {
        let err = dnf.makecache_expect_failure();
        assert_mentions(&err, &["Bad GPG signature"]);
    })
    .await
    .unwrap();
}
