//! Our metadata against the real tools: Debian's `createrepo_c` 0.17.3 on
//! the fixtures and on packages built here must write the same bytes, and
//! the real `dnf` must read a repository made only of our files.
//!
//! Both tests skip, saying so, when a tool is missing, unless
//! `PACKAGES_TEST_REQUIRE_TOOLS` is set (`scripts/test` installs them).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest as _;

use super::super::tests_build::rpmbuild;
use super::super::{RpmLimits, RpmPackage, read_rpm};
use super::tests::{demo, dep};
use super::*;

/// Whether every tool in `names` runs. When one does not: fails if
/// `PACKAGES_TEST_REQUIRE_TOOLS` is set, else says the test is skipped.
fn tools_present(test: &str, names: &[&str]) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            Command::new(n)
                .arg("--version")
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("PACKAGES_TEST_REQUIRE_TOOLS").is_none(),
        "{test}: {missing:?} missing and PACKAGES_TEST_REQUIRE_TOOLS is set"
    );
    eprintln!(
        "SKIPPED {test}: {missing:?} not installed (scripts/test installs them; \
         set PACKAGES_TEST_REQUIRE_TOOLS=1 to fail instead)"
    );
    false
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} cannot run: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpm")
}

fn rpms_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
        .collect();
    out.sort();
    out
}

/// Copies `rpm` into `repo` under `Packages/<first letter>/` (or `sub/`).
fn place(repo: &Path, rpm: &Path, sub: Option<&str>) -> String {
    let name = rpm
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let href = match sub {
        Some(sub) => format!("{sub}/{name}"),
        None => format!("Packages/{}/{name}", &name[..1]),
    };
    let to = repo.join(&href);
    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    std::fs::copy(rpm, &to).expect("copy");
    href
}

/// Reads the placed file and describes it as published: its own size,
/// SHA-256, mtime (createrepo_c's `time file`) and header range.
fn published_file(repo: &Path, href: &str) -> (RpmPackage, PublishedFile) {
    let path = repo.join(href);
    let pkg = read_rpm(
        std::fs::File::open(&path).expect("open"),
        &RpmLimits::default(),
    )
    .unwrap_or_else(|e| panic!("{href}: {e}"));
    let meta = std::fs::metadata(&path).expect("stat");
    let mtime = meta
        .modified()
        .expect("mtime")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let bytes = std::fs::read(&path).expect("read");
    let file = PublishedFile {
        location_href: href.to_owned(),
        sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        size: meta.len(),
        time_file: mtime,
        header_start: pkg.header_start,
        header_end: pkg.header_end,
    };
    (pkg, file)
}

/// Built here: weak dependencies, scriptlet requires, an epoch, a file
/// require satisfied by the package itself, a require of a name it provides
/// with another version, libc requires, directories, ghosts, more than ten
/// changelog entries (some on one day), and every character XML escapes.
const SPEC: &str = r#"Name: rd-rich
Epoch: 3
Version: 1.2~rc1
Release: 4.fc39
Summary: Rich & <friends> "quoted" 'single' é 中 😀	tab
License: MIT and (BSD or GPL-2.0-or-later)
URL: https://example.invalid/rich?a=1&b="2"
Vendor: Vé & "Co"
Packager: José <j@example.invalid>
Group: Applications/System
BuildArch: noarch
AutoReqProv: no
Requires: libfoo >= 2:1.0-3
Requires(pre): /bin/sh
Requires(post): coreutils
Requires(posttrans): findutils
Requires: /usr/bin/rd-tool
Requires: /usr/bin/elsewhere
Requires: rd-virtual = 5
Requires: rd-plain >= 2
Requires: libc.so.6(GLIBC_2.4)(64bit)
Requires: libc.so.6(GLIBC_2.34)(64bit)
Requires: libfoo >= 2:1.0-3
Requires: esc(a"b<c>&d) >= 1
Provides: rd-virtual = 5
Provides: rd-plain = 1
Provides: escé
Conflicts: old-rich < 1.0
Obsoletes: rich-legacy <= 0.9
Recommends: rich-extra
Suggests: rich-docs > 1
Supplements: rich-base
Enhances: rich-core >= 0:2

%description
Line one & <two> "three" é.

Second	paragraph.

%install
mkdir -p "%{buildroot}/usr/bin" %{buildroot}/etc/rich "%{buildroot}/usr/share/rich/dir é&<>\"'"
printf 'x\n' > %{buildroot}/usr/bin/rd-tool
printf 'x\n' > "%{buildroot}/usr/bin/esc&tool"
printf 'c\n' > %{buildroot}/etc/rich/rich.conf
printf 'd\n' > "%{buildroot}/usr/share/rich/dir é&<>\"'/f"

%pre
true

%post
true

%files
/usr/bin/rd-tool
"/usr/bin/esc&tool"
%dir /etc/rich
%config(noreplace) /etc/rich/rich.conf
/usr/share/rich
%ghost /var/log/rich.log
%ghost /etc/rich/state

%changelog
"#;

fn spec() -> String {
    let mut spec = SPEC.to_owned();
    let days = ["Wed", "Tue", "Mon", "Sun", "Sat", "Fri", "Thu"];
    for i in 0usize..12 {
        let back = i.saturating_sub(2);
        spec.push_str(&format!(
            "* {} Nov {} 2026 Zoë \"Z\" <z@example.invalid> & Co - 3:1.2~rc1-{i}\n- change {i} & <more> é\n  more\tlines\n\n",
            days[back % 7],
            25 - back
        ));
    }
    spec
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut out)
        .expect("gunzip");
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The pkgid of each `<package>` element of a createrepo_c document, in
/// order.
fn pkgids(doc: &str, marker: &str) -> Vec<String> {
    doc.match_indices(marker)
        .map(|(i, _)| doc[i + marker.len()..i + marker.len() + 64].to_owned())
        .collect()
}

#[test]
fn agrees_byte_for_byte_with_createrepo_c() {
    if !tools_present(
        "agrees_byte_for_byte_with_createrepo_c",
        &["createrepo_c", "rpmbuild"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    let mut hrefs = Vec::new();
    for rpm in rpms_in(&fixture_dir()) {
        hrefs.push(place(&repo, &rpm, None));
    }
    for rpm in rpms_in(&fixture_dir().join("signed")) {
        hrefs.push(place(&repo, &rpm, Some("signed")));
    }
    let build = dir.path().join("build");
    std::fs::create_dir(&build).expect("mkdir");
    let built = rpmbuild(&build, &spec(), "-bb", &[]);
    hrefs.push(place(&repo, &built, None));

    run(Command::new("createrepo_c")
        .arg("--no-database")
        .arg("--general-compress-type=gz")
        .arg("--quiet")
        .arg(&repo));
    let repomd_text = std::fs::read_to_string(repo.join("repodata/repomd.xml")).expect("repomd");
    let records = parse_repomd(&repomd_text).expect("createrepo_c's repomd.xml parses");
    let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["primary", "filelists", "other"]);

    // repomd.xml: ours from the same records is theirs, byte for byte.
    let revision: u64 = repomd_text
        .split("<revision>")
        .nth(1)
        .and_then(|s| s.split("</revision>").next())
        .and_then(|s| s.parse().ok())
        .expect("revision");
    assert_eq!(repomd_xml(revision, &records), repomd_text);

    let ours: std::collections::HashMap<String, PackageXml> = hrefs
        .iter()
        .map(|href| {
            let (pkg, file) = published_file(&repo, href);
            assert_eq!(forbidden_chars(&pkg), None, "{href}");
            (file.sha256.clone(), package_xml(&pkg, &file))
        })
        .collect();
    assert_eq!(ours.len(), 9);

    for record in &records {
        let gz = std::fs::read(repo.join(&record.href)).expect("metadata file");
        assert_eq!(sha256_hex(&gz), record.checksum, "{}", record.href);
        assert_eq!(gz.len() as u64, record.size);
        let theirs = gunzip(&gz);
        assert_eq!(Some(sha256_hex(theirs.as_bytes())), record.open_checksum);
        assert_eq!(Some(theirs.len() as u64), record.open_size);

        let (head, tail, marker): (String, &str, &str) = match record.kind.as_str() {
            "primary" => (primary_head(ours.len()), PRIMARY_TAIL, "pkgid=\"YES\">"),
            "filelists" => (
                filelists_head(ours.len()),
                FILELISTS_TAIL,
                "<package pkgid=\"",
            ),
            _ => (other_head(ours.len()), OTHER_TAIL, "<package pkgid=\""),
        };
        let order = pkgids(&theirs, marker);
        assert_eq!(order.len(), ours.len(), "{}", record.kind);
        let mut doc = head;
        for id in &order {
            let xml = &ours[id];
            let element = match record.kind.as_str() {
                "primary" => &xml.primary,
                "filelists" => &xml.filelists,
                _ => &xml.other,
            };
            // Each element alone first, for a readable failure.
            assert!(
                theirs.contains(element.as_str()),
                "{} element of {id} differs from createrepo_c's.\nours:\n{element}\ntheirs:\n{}",
                record.kind,
                theirs
            );
            doc.push_str(element);
        }
        doc.push_str(tail);
        assert_eq!(doc, theirs, "{} document differs", record.kind);
    }
}

/// A package that exists only in the metadata, with every character that
/// needs care in every string dnf shows.
fn hostile() -> (RpmPackage, PublishedFile) {
    let mut pkg = demo();
    pkg.name = "hostile".into();
    pkg.arch = "noarch".into();
    pkg.summary = "S & <b> \"q\" 'a' é 😀\ttab\u{1}bell\u{fffe}".into();
    pkg.description = "D & <x>\r\nline\u{1b}[0m ]]> end".into();
    pkg.url = Some("https://example.invalid/?a=1&b=\"2\"".into());
    pkg.requires = vec![dep(
        "acc-lib",
        Some("GE"),
        [Some("0"), Some("1.2"), None],
        false,
    )];
    pkg.provides = vec![dep("hostile(a\"b<c>&d\té)", None, [None; 3], false)];
    pkg.files[0].path = "/usr/bin/hostile&<tool>\"é".into();
    pkg.changelog[0].author = "Zoë \"Z\" <z@x> &\tCo\u{2}".into();
    let file = PublishedFile {
        location_href: "Packages/h/hostile-1.0-2.fc39.noarch.rpm".into(),
        sha256: "f".repeat(64),
        size: 1,
        time_file: 1,
        header_start: 1,
        header_end: 2,
    };
    (pkg, file)
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).expect("gzip");
    gz.finish().expect("gzip")
}

#[test]
fn dnf_reads_a_repository_of_our_files() {
    if !tools_present("dnf_reads_a_repository_of_our_files", &["dnf"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    let mut packages: Vec<(RpmPackage, PublishedFile)> = rpms_in(&fixture_dir())
        .iter()
        .map(|rpm| {
            let href = place(&repo, rpm, None);
            published_file(&repo, &href)
        })
        .collect();
    packages.push(hostile());

    let xml: Vec<PackageXml> = packages.iter().map(|(p, f)| package_xml(p, f)).collect();
    let n = xml.len();
    let docs = [
        ("primary", primary_head(n), PRIMARY_TAIL, 0),
        ("filelists", filelists_head(n), FILELISTS_TAIL, 1),
        ("other", other_head(n), OTHER_TAIL, 2),
    ];
    std::fs::create_dir_all(repo.join("repodata")).expect("mkdir");
    let mut records = Vec::new();
    for (kind, head, tail, which) in docs {
        let mut doc = head;
        for x in &xml {
            doc.push_str([&x.primary, &x.filelists, &x.other][which]);
        }
        doc.push_str(tail);
        let gz = gzip(&doc);
        let sum = sha256_hex(&gz);
        let href = metadata_href(kind, &sum, "gz");
        std::fs::write(repo.join(&href), &gz).expect("write");
        records.push(RepomdData {
            kind: kind.to_owned(),
            href,
            checksum: sum,
            size: gz.len() as u64,
            open_checksum: Some(sha256_hex(doc.as_bytes())),
            open_size: Some(doc.len() as u64),
            timestamp: 1_700_000_000,
        });
    }
    let repomd = repomd_xml(1_700_000_000, &records);
    assert_eq!(parse_repomd(&repomd).expect("round trip"), records);
    std::fs::write(repo.join("repodata/repomd.xml"), repomd).expect("write");

    let root = dir.path().join("root");
    let dnf = |args: &[&str]| {
        run(Command::new("dnf")
            .arg("-q")
            .arg("-y")
            .arg("--setopt=reposdir=/dev/null")
            .arg(format!(
                "--setopt=cachedir={}",
                dir.path().join("cache").display()
            ))
            .arg(format!("--repofrompath=t,file://{}", repo.display()))
            .args(["--repo", "t", "--releasever", "39", "--installroot"])
            .arg(&root)
            .args(args))
    };
    let all = dnf(&[
        "repoquery",
        "--qf",
        "%{name}|%{epoch}|%{version}|%{release}|%{arch}|%{summary}",
    ]);
    let mut lines: Vec<&str> = all.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "acc-data|0|0.9|1|noarch|Fixture standalone noarch data package",
            "acc-hello|0|1.0.1|1|noarch|Fixture noarch package requiring acc-lib",
            "acc-lib|0|1.2.0|1|x86_64|Fixture library package (arch-specific)",
            "acc-tool|0|2.0|1|x86_64|Fixture package with a transitive dependency chain",
            // The forbidden characters are gone, the rest is intact.
            "hostile|0|1.0|2.fc39|noarch|S & <b> \"q\" 'a' é 😀\ttabbell",
        ]
    );
    // Dependencies resolve through primary.
    let resolved = dnf(&[
        "repoquery",
        "--requires",
        "--resolve",
        "--qf",
        "%{name}",
        "acc-tool",
    ]);
    let mut resolved: Vec<&str> = resolved.lines().collect();
    resolved.sort();
    assert_eq!(resolved, ["acc-data", "acc-hello"]);
    let provider = dnf(&[
        "repoquery",
        "--qf",
        "%{name}",
        "--whatprovides",
        "hostile(a\"b<c>&d\té)",
    ]);
    assert_eq!(provider.trim(), "hostile");
    // A primary file, then a file only filelists lists.
    let owner = dnf(&[
        "repoquery",
        "--qf",
        "%{name}",
        "--whatprovides",
        "/usr/bin/hostile&<tool>\"é",
    ]);
    assert_eq!(owner.trim(), "hostile");
    let files = dnf(&["repoquery", "-l", "acc-lib", "hostile"]);
    assert!(files.contains("/usr/share/acc-lib/README"), "{files}");
    assert!(files.contains("/usr/share/doc/demo/README"), "{files}");
    // other.xml: the changelog, escaped attribute and all.
    let changelog = dnf(&["repoquery", "--changelogs", "hostile"]);
    assert!(changelog.contains("Zoë \"Z\" <z@x> &\tCo"), "{changelog}");
    assert!(changelog.contains("- fix & <go>"), "{changelog}");
}

#[test]
fn parse_repomd_reads_createrepo_c_with_databases_and_simple_names() {
    if !tools_present(
        "parse_repomd_reads_createrepo_c_with_databases_and_simple_names",
        &["createrepo_c"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for rpm in rpms_in(&fixture_dir()) {
        place(dir.path(), &rpm, None);
    }
    run(Command::new("createrepo_c")
        .arg("--simple-md-filenames")
        .arg("--quiet")
        .arg(dir.path()));
    let text = std::fs::read_to_string(dir.path().join("repodata/repomd.xml")).expect("repomd");
    let records = parse_repomd(&text).expect("parses");
    let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "primary",
            "filelists",
            "other",
            "primary_db",
            "filelists_db",
            "other_db"
        ]
    );
    for r in &records {
        assert!(!r.href.contains(&r.checksum), "{}: a simple name", r.href);
        let bytes = std::fs::read(dir.path().join(&r.href)).expect("listed file exists");
        assert_eq!(sha256_hex(&bytes), r.checksum, "{}", r.href);
        assert_eq!(bytes.len() as u64, r.size);
        assert!(r.open_checksum.is_some() && r.open_size.is_some());
    }
}
