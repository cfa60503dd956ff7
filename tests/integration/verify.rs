//! `packages verify URL`, the real binary, against repositories of every
//! format published through the library and served by `packages serve`
//! (and by Garage's website endpoint): exit status 0 on what was published,
//! then 1 naming the file for each kind of tampering done in the store
//! (a package changed, a package deleted, the index re-signed with another
//! key, an index truncated), and 2 for a dead URL.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use packages::publish::Publisher;
use packages::repo::{Distro, Org, Scope};
use packages::signing::{PgpKey, RsaKey, SignatureFormat, Signer};
use packages::stores::Stores;
use serde_json::Value;

use crate::deb::{deb_upload, serve, test_pgp_key};
use crate::support::{Bucket, Ctx, ORG, REPO, VERSION, apk_fixture, test_key_pem};

backend_tests!([local] verify_catches_tampering_in_every_format);
backend_tests!([garage] verify_checks_the_garage_website);

/// The Debian fixtures and their components.
const DEBS: [(&str, &str); 3] = [
    ("jq_1.6-2.1+deb12u3_amd64.deb", "main"),
    ("libjq1_1.6-2.1+deb12u3_amd64.deb", "main"),
    ("hello_2.10-3_amd64.deb", "contrib"),
];

/// One org with a key for each format, and a repository of each published.
async fn publish_every_format(stores: &Stores, public_url: Option<String>) {
    let publisher = Publisher::new(stores.clone()).with_public_url(public_url);
    let org = Org::parse(ORG).unwrap();
    publisher.create_org(&org).await.expect("create org");
    let alpine = Scope::new(org.clone(), Some(Distro::ALPINE), None, None).unwrap();
    packages::keys::import(stores, &alpine, &test_key_pem())
        .await
        .expect("import the RSA key");
    for distro in ["debian", "fedora"] {
        let scope = Scope::new(
            org.clone(),
            Some(Distro::parse(distro).unwrap()),
            None,
            None,
        )
        .unwrap();
        packages::keys::import_with(
            stores,
            &scope,
            &test_pgp_key(),
            &packages::keys::ChangeOptions {
                algorithm: packages::signing::Algorithm::OpenPgp,
                ..Default::default()
            },
        )
        .await
        .expect("import the OpenPGP key");
    }
    let apk = packages::repo::RepoId::parse(ORG, "alpine", VERSION, REPO).unwrap();
    for file in [
        "package-x-1.0.0-r0.apk",
        "package-y-1.0.0-r0.apk",
        "pretend-baselayout-1.0.0-r0.apk",
        "alpine-baselayout-3.2.0-r23.apk",
    ] {
        let path = apk_fixture(file);
        publisher
            .upload(&packages::publish::Upload {
                repo: apk.clone(),
                arch: None,
                extra_arches: Vec::new(),
                display_name: file.to_owned(),
                path,
            })
            .await
            .unwrap_or_else(|e| panic!("upload {file}: {e}"));
    }
    for (file, component) in DEBS {
        publisher
            .upload(&deb_upload("bookworm", component, file))
            .await
            .unwrap_or_else(|e| panic!("upload {file}: {e}"));
    }
    crate::rpm::publish_all(&publisher).await;
}

/// What one run of `packages verify` gave.
struct Run {
    code: i32,
    json: Value,
    stderr: String,
}

impl Run {
    /// Whether a problem names a file ending with `file`.
    fn names(&self, file: &str) -> bool {
        self.json["problems"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p["file"].as_str().unwrap_or("").ends_with(file))
        })
    }
}

/// Runs `packages --json verify ARGS`.
fn verify(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_packages"))
        .arg("--json")
        .arg("verify")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run packages verify");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Run {
        code: out.status.code().unwrap_or(-1),
        json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_ok(run: &Run, what: &str) {
    assert_eq!(
        run.code, 0,
        "{what}: expected exit 0, report {:#}, stderr {}",
        run.json, run.stderr
    );
    assert!(
        run.json["packages"].as_u64().unwrap_or(0) > 0,
        "{what}: {:#}",
        run.json
    );
}

fn assert_names(run: &Run, file: &str, what: &str) {
    assert_eq!(
        run.code, 1,
        "{what}: expected exit 1, report {:#}, stderr {}",
        run.json, run.stderr
    );
    assert!(
        run.names(file),
        "{what}: no problem names {file}: {:#}",
        run.json
    );
}

/// Changes a file for the length of `check`, then puts it back.
fn tampered(path: &Path, change: impl FnOnce(&[u8]) -> Option<Vec<u8>>, check: impl FnOnce()) {
    let original = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match change(&original) {
        Some(bytes) => std::fs::write(path, bytes).unwrap(),
        None => std::fs::remove_file(path).unwrap(),
    }
    check();
    std::fs::write(path, original).unwrap();
}

/// The public key files a user would have: the apk key under its name, the
/// OpenPGP key armored.
fn key_files(dir: &Path) -> (PathBuf, PathBuf) {
    let rsa = RsaKey::from_private_pem(ORG, &test_key_pem()).unwrap();
    let rsa_path = dir.join(rsa.key_name());
    std::fs::write(&rsa_path, rsa.public_pem()).unwrap();
    let pgp = PgpKey::from_armored(ORG, &test_pgp_key()).unwrap();
    let pgp_path = dir.join("acme.asc");
    std::fs::write(&pgp_path, pgp.public_armored()).unwrap();
    (rsa_path, pgp_path)
}

async fn verify_catches_tampering_in_every_format(ctx: Ctx) {
    let (storage, place) = ctx.open(Bucket::Main).await;
    let stores = Stores::shared(storage);
    publish_every_format(&stores, None).await;
    let dir = place.dir.clone().expect("a local store");
    let server = serve(&dir);
    let base = server.1.clone();
    let keys = ctx.temp_dir();
    tokio::task::spawn_blocking(move || {
        let (rsa, pgp) = key_files(&keys);
        let public = dir.join("static").join(ORG);
        alpine_checks(&base, &public.join("alpine"), &rsa);
        debian_checks(&base, &public.join("debian"), &pgp);
        rpm_checks(&base, &public.join("fedora"), &pgp);

        // Nothing listens there: could not check.
        let dead = verify(&["http://127.0.0.1:9/acme/alpine/v3.20/main/x86_64/"]);
        assert_eq!(dead.code, 2, "dead URL: {:#} {}", dead.json, dead.stderr);
        assert_eq!(dead.json["result"], "unchecked");
        // A server with nothing there: could not check either.
        let nothing = verify(&[&format!("{base}/acme/nothing/here/")]);
        assert_eq!(nothing.code, 2, "{:#} {}", nothing.json, nothing.stderr);
        let not_http = verify(&["ftp://example.com/x"]);
        assert_eq!(not_http.code, 2);
        drop(server);
    })
    .await
    .unwrap();
}

fn alpine_checks(base: &str, alpine: &Path, rsa: &Path) {
    let rsa = rsa.to_str().unwrap();
    let arch_url = format!("{base}/{ORG}/alpine/{VERSION}/{REPO}/x86_64/");
    let arch_dir = alpine.join(VERSION).join(REPO).join("x86_64");

    let given = verify(&[&arch_url, "--key", rsa]);
    assert_ok(&given, "apk arch URL with --key");
    assert_eq!(given.json["key"]["kind"], "given");
    assert_eq!(given.json["packages"], 3, "{:#}", given.json);

    // The repo URL: every arch found, the published key, with the warning.
    let repo_url = format!("{base}/{ORG}/alpine/{VERSION}/{REPO}");
    let published = verify(&[&repo_url]);
    assert_ok(&published, "apk repo URL");
    assert_eq!(published.json["key"]["kind"], "published");
    assert_eq!(
        published.json["packages"], 4,
        "x86_64 and aarch64: {:#}",
        published.json
    );
    assert!(
        published.json["warnings"][0]
            .as_str()
            .unwrap()
            .contains("only proves the repository is consistent"),
        "{:#}",
        published.json
    );
    assert_ok(&verify(&[&arch_url, "--no-download"]), "apk --no-download");

    // A package changed: another package's bytes under its name.
    let other = std::fs::read(arch_dir.join("package-x-1.0.0-r0.apk")).unwrap();
    tampered(
        &arch_dir.join("package-y-1.0.0-r0.apk"),
        |_| Some(other),
        || {
            let run = verify(&[&arch_url, "--key", rsa]);
            assert_names(&run, "package-y-1.0.0-r0.apk", "apk package replaced");
            // The sizes differ too: HEAD sees it.
            let head = verify(&[&arch_url, "--key", rsa, "--no-download"]);
            assert_names(
                &head,
                "package-y-1.0.0-r0.apk",
                "apk package replaced, HEAD",
            );
        },
    );
    // One byte changed, same size: only the download sees it.
    tampered(
        &arch_dir.join("package-x-1.0.0-r0.apk"),
        |b| {
            let mut b = b.to_vec();
            let at = b.len() / 2;
            b[at] ^= 0x55;
            Some(b)
        },
        || {
            let run = verify(&[&arch_url, "--key", rsa]);
            assert_names(&run, "package-x-1.0.0-r0.apk", "apk package flipped");
        },
    );
    tampered(
        &arch_dir.join("pretend-baselayout-1.0.0-r0.apk"),
        |_| None,
        || {
            let run = verify(&[&arch_url, "--key", rsa]);
            assert_names(
                &run,
                "pretend-baselayout-1.0.0-r0.apk",
                "apk package deleted",
            );
        },
    );
    // Re-signed with another key (under that key's name, as `abuild-sign` would).
    let index = arch_dir.join("APKINDEX.tar.gz");
    let other_key = RsaKey::generate(ORG, 2048).unwrap();
    tampered(
        &index,
        |b| {
            let (_, _, signed) = packages::formats::apk::index::split_signed(b).unwrap();
            Some(packages::formats::apk::index::sign_unsigned(
                signed, &other_key,
            ))
        },
        || {
            let run = verify(&[&arch_url, "--key", rsa]);
            assert_names(&run, "x86_64/APKINDEX.tar.gz", "apk index re-signed");
            let run = verify(&[&arch_url]);
            assert_names(
                &run,
                "x86_64/APKINDEX.tar.gz",
                "apk index re-signed, published key",
            );
        },
    );
    tampered(
        &index,
        |b| Some(b[..b.len() * 2 / 3].to_vec()),
        || {
            let run = verify(&[&arch_url, "--key", rsa]);
            assert_names(&run, "x86_64/APKINDEX.tar.gz", "apk index truncated");
        },
    );
    assert_ok(&verify(&[&arch_url, "--key", rsa]), "apk restored");
}

fn debian_checks(base: &str, debian: &Path, pgp: &Path) {
    let pgp = pgp.to_str().unwrap();
    let distro_url = format!("{base}/{ORG}/debian");
    let dists_url = format!("{distro_url}/dists/bookworm/");
    let suite_dir = debian.join("dists/bookworm");

    let given = verify(&[&dists_url, "--key", pgp]);
    assert_ok(&given, "deb dists URL with --key");
    assert_eq!(given.json["packages"], 3, "{:#}", given.json);
    let published = verify(&[&distro_url, "--suite", "bookworm"]);
    assert_ok(&published, "deb base URL with --suite");
    assert_eq!(published.json["key"]["kind"], "published");

    let pool = debian.join("pool/main/j/jq/jq_1.6-2.1+deb12u3_amd64.deb");
    assert!(pool.exists(), "{}", pool.display());
    tampered(
        &pool,
        |b| {
            let mut b = b.to_vec();
            let last = b.len() - 1;
            b[last] ^= 1;
            Some(b)
        },
        || {
            let run = verify(&[&dists_url, "--key", pgp]);
            assert_names(&run, "jq_1.6-2.1+deb12u3_amd64.deb", "deb package changed");
        },
    );
    let hello = debian.join("pool/contrib/h/hello/hello_2.10-3_amd64.deb");
    tampered(
        &hello,
        |_| None,
        || {
            let run = verify(&[&dists_url, "--key", pgp]);
            assert_names(&run, "hello_2.10-3_amd64.deb", "deb package deleted");
        },
    );
    let other = PgpKey::generate(ORG, 0, &AtomicBool::new(false)).unwrap();
    tampered(
        &suite_dir.join("InRelease"),
        |b| {
            let text = packages::formats::deb::release::signed_text(b).unwrap();
            Some(
                other
                    .sign(text.as_bytes(), SignatureFormat::Cleartext)
                    .unwrap(),
            )
        },
        || {
            let run = verify(&[&dists_url, "--key", pgp]);
            assert_names(&run, "bookworm/InRelease", "InRelease re-signed");
        },
    );
    tampered(
        &suite_dir.join("main/binary-amd64/Packages.gz"),
        |b| Some(b[..b.len() / 2].to_vec()),
        || {
            let run = verify(&[&dists_url, "--key", pgp]);
            assert_names(
                &run,
                "main/binary-amd64/Packages.gz",
                "Packages.gz truncated",
            );
        },
    );
    assert_ok(&verify(&[&dists_url, "--key", pgp]), "deb restored");
}

fn rpm_checks(base: &str, fedora: &Path, pgp: &Path) {
    let pgp = pgp.to_str().unwrap();
    let arch_rel = crate::rpm::arch_dir();
    let arch_url = format!("{base}/{arch_rel}/");
    let arch_dir = fedora
        .parent()
        .unwrap()
        .join(arch_rel.strip_prefix(&format!("{ORG}/")).unwrap());

    let given = verify(&[&arch_url, "--key", pgp]);
    assert_ok(&given, "rpm arch URL with --key");
    assert_eq!(given.json["packages"], 4, "{:#}", given.json);
    let published = verify(&[&arch_url]);
    assert_ok(&published, "rpm arch URL, published key");
    assert_eq!(published.json["key"]["kind"], "published");
    // The repo folder above the arch folders.
    let repo_url = format!("{base}/{ORG}/fedora/linux/releases/40/server/");
    assert_ok(&verify(&[&repo_url, "--key", pgp]), "rpm repo URL");

    let lib = arch_dir.join("Packages/a/acc-lib-1.2.0-1.x86_64.rpm");
    tampered(
        &lib,
        |b| {
            let mut b = b.to_vec();
            let at = b.len() - 10;
            b[at] ^= 1;
            Some(b)
        },
        || {
            let run = verify(&[&arch_url, "--key", pgp]);
            assert_names(&run, "acc-lib-1.2.0-1.x86_64.rpm", "rpm package changed");
        },
    );
    tampered(
        &arch_dir.join("Packages/a/acc-data-0.9-1.noarch.rpm"),
        |_| None,
        || {
            let run = verify(&[&arch_url, "--key", pgp]);
            assert_names(&run, "acc-data-0.9-1.noarch.rpm", "rpm package deleted");
        },
    );
    let repodata = arch_dir.join("repodata");
    let repomd = std::fs::read(repodata.join("repomd.xml")).unwrap();
    let other = PgpKey::generate(ORG, 0, &AtomicBool::new(false)).unwrap();
    tampered(
        &repodata.join("repomd.xml.asc"),
        |_| Some(other.sign(&repomd, SignatureFormat::Detached).unwrap()),
        || {
            let run = verify(&[&arch_url, "--key", pgp]);
            assert_names(&run, "repodata/repomd.xml.asc", "repomd.xml re-signed");
        },
    );
    let href =
        packages::formats::rpm::repodata::parse_repomd(std::str::from_utf8(&repomd).unwrap())
            .unwrap()
            .into_iter()
            .find(|d| d.kind == "primary")
            .expect("a primary record")
            .href;
    let primary = arch_dir.join(&href);
    tampered(
        &primary,
        |b| Some(b[..b.len() / 2].to_vec()),
        || {
            let run = verify(&[&arch_url, "--key", pgp]);
            assert_names(&run, "-primary.xml.gz", "primary.xml.gz truncated");
        },
    );
    assert_ok(&verify(&[&arch_url, "--key", pgp]), "rpm restored");
}

async fn verify_checks_the_garage_website(ctx: Ctx) {
    let site = ctx.garage_website().await;
    let (stores, base) = (site.stores, site.base);
    publish_every_format(&stores, Some(base.clone())).await;
    tokio::task::spawn_blocking(move || {
        let apk = verify(&[
            &format!("{base}/{ORG}/alpine/{VERSION}/{REPO}/"),
            "--arch",
            "x86_64",
            "--arch",
            "aarch64",
        ]);
        assert_ok(&apk, "apk on Garage");
        assert_eq!(apk.json["packages"], 4, "{:#}", apk.json);
        let deb = verify(&[&format!("{base}/{ORG}/debian"), "--suite", "bookworm"]);
        assert_ok(&deb, "deb on Garage");
        let repo_file =
            format!("{base}/{ORG}/fedora/linux/releases/40/server/{ORG}-fedora-40-server.repo");
        let rpm = verify(&[&repo_file]);
        assert_ok(&rpm, "rpm .repo file on Garage");
        assert_eq!(rpm.json["packages"], 4, "{:#}", rpm.json);
        let head = verify(&[&repo_file, "--no-download"]);
        assert_ok(&head, "rpm --no-download on Garage");
        // A missing arch asked for by name: could not check.
        let missing = verify(&[
            &format!("{base}/{ORG}/alpine/{VERSION}/{REPO}/"),
            "--arch",
            "s390x",
        ]);
        assert_eq!(missing.code, 2, "{:#}", missing.json);
    })
    .await
    .unwrap();
}
