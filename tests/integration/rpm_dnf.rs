//! RPM repositories read by the real `dnf` 4.14 (private configuration,
//! `--installroot`, `repo_gpgcheck=1` and `gpgcheck=1`, any warning fatal):
//! through `packages serve` on the local dir and through Garage's website
//! endpoint (private tree in a separate bucket), using the `.repo` file we
//! publish. Tampering with `repomd.xml`, a metadata file or a package is
//! refused, and Debian's `createrepo_c` run over the published packages
//! agrees with our metadata.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use packages::stores::Stores;

use crate::apt_client::{StaticHttp, flip_byte};
use crate::deb::serve;
use crate::dnf_client::{DnfClient, metadata_file};
use crate::rpm::{REPO, VERSION, arch_dir, publish_all, setup_fedora};
use crate::support::{Bucket, Ctx, ORG};

backend_tests!([local] dnf_installs_through_packages_serve);
backend_tests!([garage] dnf_installs_from_the_garage_website);

/// The `.repo` file's URL below the public tree's base URL.
fn repo_file_url(base: &str) -> String {
    format!(
        "{base}/{ORG}/fedora/linux/releases/{VERSION}/{REPO}/{ORG}-fedora-{VERSION}-{REPO}.repo"
    )
}

/// What every client test checks against a public tree served at `base`.
fn dnf_checks(base: &str) {
    let dnf = DnfClient::from_repo_url(&repo_file_url(base));
    // The resolver pulls the in-repo dependencies, noarch ones included.
    let tx = dnf.install(&["acc-tool"]).expect("dnf install acc-tool");
    let mut names = tx.installed_names();
    names.sort();
    assert_eq!(
        names,
        ["acc-data", "acc-hello", "acc-lib", "acc-tool"],
        "{}",
        tx.output
    );
    // What dnf installed carries our package signature.
    for rpm in dnf.cached_rpms() {
        dnf.checksig(&rpm)
            .unwrap_or_else(|e| panic!("{}: {e}", rpm.display()));
    }
}

/// A copy of the public tree, one file broken at a time, served by an
/// independent server: dnf must refuse each.
fn tamper_checks(public: &Path) {
    let arch = arch_dir();
    let key_rel = format!(
        "{ORG}/fedora/linux/releases/{VERSION}/{REPO}/RPM-GPG-KEY-{ORG}-fedora-{VERSION}-{REPO}.asc"
    );
    for what in ["repomd.xml", "primary", "package"] {
        let copy = tempfile::tempdir().unwrap();
        copy_tree(public, copy.path());
        let os = copy.path().join(&arch);
        let target = match what {
            "repomd.xml" => os.join("repodata/repomd.xml"),
            "primary" => metadata_file(&os, "primary"),
            _ => os.join("Packages/a/acc-lib-1.2.0-1.x86_64.rpm"),
        };
        let len = std::fs::metadata(&target).unwrap().len() as usize;
        flip_byte(&target, len / 2);
        let http = StaticHttp::start(copy.path());
        let key = copy.path().join(&key_rel);
        let dnf = DnfClient::new(&format!("{}/{arch}", http.url()), &[&key]);
        let err = dnf.install_expect_failure(&["acc-tool"]);
        assert!(!err.is_empty(), "dnf must refuse a tampered {what}");
    }
}

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// The `<package>` elements of a primary document, with the file's mtime
/// (createrepo_c's, ours is the upload time) left out.
fn packages_of(primary: &str) -> Vec<String> {
    let mut out: Vec<String> = primary
        .split("<package ")
        .skip(1)
        .map(|p| {
            let p = p.split("</package>").next().unwrap();
            let (before, after) = p.split_once("<time file=\"").unwrap();
            let (_, rest) = after.split_once('"').unwrap();
            format!("{before}<time{rest}")
        })
        .collect();
    out.sort();
    out
}

/// Debian's createrepo_c over the published packages writes the same
/// package elements as ours (checksums, sizes, header ranges, deps, files).
fn createrepo_agrees(public: &Path) {
    let os = public.join(arch_dir());
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&os.join("Packages"), &copy.path().join("Packages"));
    let out = Command::new("createrepo_c")
        .args(["--no-database", "--simple-md-filenames"])
        .arg(copy.path())
        .output()
        .expect("run createrepo_c (createrepo-c is installed by scripts/test)");
    assert!(out.status.success(), "createrepo_c: {out:?}");
    let theirs = gunzip(&copy.path().join("repodata/primary.xml.gz"));
    let ours = gunzip(&metadata_file(&os, "primary"));
    assert_eq!(packages_of(&ours), packages_of(&theirs));
    for kind in ["filelists", "other"] {
        let theirs = gunzip(&copy.path().join(format!("repodata/{kind}.xml.gz")));
        let ours = gunzip(&metadata_file(&os, kind));
        let elements = |doc: &str| -> Vec<String> {
            doc.split("<package ")
                .skip(1)
                .map(|p| p.split("</package>").next().unwrap().to_owned())
                .collect()
        };
        let (mut a, mut b) = (elements(&ours), elements(&theirs));
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "{kind}");
    }
}

async fn dnf_installs_through_packages_serve(ctx: Ctx) {
    let (storage, place) = ctx.open(Bucket::Main).await;
    let stores = Stores::shared(storage);
    let dir = place.dir.clone().expect("a local store");
    let publisher = setup_fedora(&stores).await;
    let server = serve(&dir);
    let publisher = publisher.with_public_url(Some(server.1.clone()));
    publish_all(&publisher).await;
    let base = server.1.clone();
    tokio::task::spawn_blocking(move || dnf_checks(&base))
        .await
        .unwrap();
    let public = dir.join("static");
    tokio::task::spawn_blocking(move || {
        createrepo_agrees(&public);
        tamper_checks(&public);
    })
    .await
    .unwrap();
}

async fn dnf_installs_from_the_garage_website(ctx: Ctx) {
    let site = ctx.garage_website().await;
    let (stores, base) = (site.stores, site.base);
    let publisher = setup_fedora(&stores)
        .await
        .with_public_url(Some(base.clone()));
    publish_all(&publisher).await;
    // The private tree is not served from the website bucket.
    let private_key = format!("{}/{ORG}/fedora/signing-key.pem", site.private_base);
    assert_eq!(crate::support::curl_get(&private_key).status, 404);
    tokio::task::spawn_blocking(move || dnf_checks(&base))
        .await
        .unwrap();
}
