//! Reading real `.rpm` files and comparing with rpm's own tools: fields with
//! `rpm -qp --qf`, metadata with `createrepo_c`'s `primary`, `filelists` and
//! `other`, for the fixtures (signed and not) and for packages built here
//! with `rpmbuild`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest as _;

use super::*;

pub(super) fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpm")
}

/// Every fixture, unsigned then signed.
pub(super) fn fixtures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [fixture_dir(), fixture_dir().join("signed")] {
        let mut here: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("fixture dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
            .collect();
        here.sort();
        out.extend(here);
    }
    assert_eq!(out.len(), 8);
    out
}

pub(super) fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} cannot run (rpm tools must be installed): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

pub(super) fn read_path(path: &Path) -> RpmPackage {
    let file = std::fs::File::open(path).expect("open");
    read_rpm(file, &RpmLimits::default())
        .unwrap_or_else(|e| panic!("{} refused: {e}", path.display()))
}

fn query(path: &Path, format: &str) -> String {
    run(Command::new("rpm")
        .arg("--dbpath")
        .arg(std::env::temp_dir().join("packages-rpmread-nodb"))
        .arg("-qp")
        .arg("--nosignature")
        .arg("--nodigest")
        .arg("--qf")
        .arg(format)
        .arg(path))
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "(none)".to_owned())
}

fn deps_line(deps: &[Dependency]) -> String {
    deps.iter()
        .map(|d| {
            let evr = match (&d.epoch, &d.version, &d.release) {
                (None, _, _) => String::new(),
                (Some(e), v, r) => {
                    let mut s = String::new();
                    if e != "0" {
                        s.push_str(&format!("{e}:"));
                    }
                    s.push_str(v.as_deref().unwrap_or(""));
                    if let Some(r) = r {
                        s.push_str(&format!("-{r}"));
                    }
                    s
                }
            };
            format!("{}|{}|{evr}\n", d.name, d.sense)
        })
        .collect()
}

/// What `rpm -qp --qf` says, field by field, against what we read.
pub(super) fn check_against_rpm(path: &Path) -> RpmPackage {
    let pkg = read_path(path);
    let bytes = std::fs::read(path).expect("read");
    assert_eq!(pkg.size_package, bytes.len() as u64);
    assert_eq!(pkg.sha256, hex::encode(sha2::Sha256::digest(&bytes)));

    let scalars = query(
        path,
        "%{NAME}\n%{EPOCHNUM}\n%{VERSION}\n%{RELEASE}\n%{ARCH}\n%{SUMMARY}\n%{URL}\n%{LICENSE}\n\
         %{VENDOR}\n%{GROUP}\n%{BUILDHOST}\n%{SOURCERPM}\n%{BUILDTIME}\n%{PACKAGER}\n%{LONGSIZE}\n\
         %{LONGARCHIVESIZE}\n%{PAYLOADCOMPRESSOR}\n",
    );
    let ours = [
        pkg.name.clone(),
        pkg.epoch.to_string(),
        pkg.version.clone(),
        pkg.release.clone(),
        pkg.arch.clone(),
        pkg.summary.clone(),
        opt(&pkg.url),
        opt(&pkg.license),
        opt(&pkg.vendor),
        opt(&pkg.group),
        opt(&pkg.buildhost),
        pkg.sourcerpm.clone(),
        pkg.build_time.to_string(),
        opt(&pkg.packager),
        pkg.size_installed.to_string(),
        pkg.size_archive.to_string(),
        opt(&pkg.payload_compressor),
    ]
    .map(|s| s + "\n")
    .concat();
    assert_eq!(ours, scalars, "{}", path.display());
    assert_eq!(
        pkg.description,
        query(path, "%{DESCRIPTION}"),
        "{}",
        path.display()
    );

    for (list, tag, deps) in [
        ("requires", "REQUIRE", &pkg.requires),
        ("provides", "PROVIDE", &pkg.provides),
        ("conflicts", "CONFLICT", &pkg.conflicts),
        ("obsoletes", "OBSOLETE", &pkg.obsoletes),
        ("recommends", "RECOMMEND", &pkg.recommends),
        ("suggests", "SUGGEST", &pkg.suggests),
        ("supplements", "SUPPLEMENT", &pkg.supplements),
        ("enhances", "ENHANCE", &pkg.enhances),
    ] {
        let theirs = query(
            path,
            &format!("[%{{{tag}NAME}}|%{{{tag}FLAGS}}|%{{{tag}VERSION}}\n]"),
        );
        // An explicit epoch 0 is the same as none once split.
        let theirs = theirs.replace("|0:", "|");
        assert_eq!(deps_line(deps), theirs, "{}: {list}", path.display());
    }

    let files: String = pkg
        .files
        .iter()
        .map(|f| format!("{}|{}|{}\n", f.path, f.mode, f.flags))
        .collect();
    let theirs = query(path, "[%{FILENAMES}|%{FILEMODES}|%{FILEFLAGS}\n]");
    assert_eq!(files, theirs, "{}: files", path.display());

    let changelog: String = pkg
        .changelog
        .iter()
        .map(|c| format!("{}|{}|{}\n", c.time, c.author, c.text))
        .collect();
    let theirs = query(
        path,
        "[%{CHANGELOGTIME}|%{CHANGELOGNAME}|%{CHANGELOGTEXT}\n]",
    );
    assert_eq!(changelog, theirs, "{}: changelog", path.display());
    pkg
}

#[test]
fn every_fixture_reads_and_matches_rpm() {
    let readme = std::fs::read_to_string(fixture_dir().join("README.md")).expect("README");
    for path in fixtures() {
        let pkg = check_against_rpm(&path);
        let name = path.file_name().expect("name").to_string_lossy();
        assert_eq!(pkg.file_name(), name);
        assert_eq!(pkg.is_noarch(), name.contains(".noarch."));
        assert!(readme.contains(&pkg.sha256), "{name}: sha256 in README");
        assert_eq!(pkg.signed, path.parent() != Some(&fixture_dir()), "{name}");
        assert_eq!(pkg.payload_compressor.as_deref(), Some("gzip"));
    }
}

#[test]
fn fixture_values() {
    let tool = read_path(&fixture_dir().join("acc-tool-2.0-1.x86_64.rpm"));
    assert_eq!(
        (tool.name.as_str(), tool.epoch, tool.version.as_str()),
        ("acc-tool", 0, "2.0")
    );
    assert_eq!((tool.header_start, tool.header_end), (4504, 6325));
    let hello = tool
        .requires
        .iter()
        .find(|d| d.name == "acc-hello")
        .expect("dep");
    assert_eq!(hello.flags.as_deref(), Some("EQ"));
    assert_eq!(
        (
            hello.epoch.as_deref(),
            hello.version.as_deref(),
            hello.release.as_deref()
        ),
        (Some("0"), Some("1.0.1"), Some("1"))
    );
    let data = tool
        .requires
        .iter()
        .find(|d| d.name == "acc-data")
        .expect("dep");
    assert_eq!((data.flags.as_ref(), data.epoch.as_ref()), (None, None));
    let primary: Vec<_> = tool
        .primary_requires()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(primary, ["acc-data", "acc-hello"]);
    assert_eq!(tool.files[0].path, "/usr/share/acc-tool/README");
    assert!(!tool.files[0].is_dir() && !tool.files[0].is_ghost());

    let json = serde_json::to_string(&tool).expect("serialize");
    let back: RpmPackage = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, tool);
}

/// The text between `open` and the next `close` after `from`.
pub(super) fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

/// Attribute `name` of the first element in `s`.
fn attr(s: &str, name: &str) -> Option<String> {
    between(s, &format!(" {name}=\""), "\"").map(unescape)
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn gunzip(path: &Path) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open"))
        .read_to_string(&mut out)
        .expect("gunzip");
    out
}

/// Runs createrepo_c over `rpms` and returns primary, filelists and other.
pub(super) fn createrepo(rpms: &[PathBuf]) -> [String; 3] {
    let dir = tempfile::tempdir().expect("tempdir");
    for p in rpms {
        std::fs::copy(p, dir.path().join(p.file_name().expect("name"))).expect("copy");
    }
    run(Command::new("createrepo_c")
        .arg("--no-database")
        .arg("--general-compress-type=gz")
        .arg("--quiet")
        .arg(dir.path()));
    let repodata = dir.path().join("repodata");
    ["primary", "filelists", "other"].map(|kind| {
        let file = std::fs::read_dir(&repodata)
            .expect("repodata")
            .map(|e| e.expect("entry").path())
            .find(|p| {
                p.file_name()
                    .expect("name")
                    .to_string_lossy()
                    .ends_with(&format!("-{kind}.xml.gz"))
            })
            .unwrap_or_else(|| panic!("no {kind}"));
        gunzip(&file)
    })
}

fn entries_xml(list: &[Dependency], pre_allowed: bool) -> Vec<String> {
    list.iter()
        .map(|d| {
            format!(
                "{}|{}|{}|{}|{}|{}",
                d.name,
                d.flags.as_deref().unwrap_or(""),
                d.epoch.as_deref().unwrap_or(""),
                d.version.as_deref().unwrap_or(""),
                d.release.as_deref().unwrap_or(""),
                pre_allowed && d.pre
            )
        })
        .collect()
}

fn parse_entries(format: &str, list: &str) -> Vec<String> {
    let Some(body) = between(format, &format!("<rpm:{list}>"), &format!("</rpm:{list}>")) else {
        return Vec::new();
    };
    body.split("<rpm:entry")
        .skip(1)
        .map(|e| {
            let a = |n| attr(e, n).unwrap_or_default();
            format!(
                "{}|{}|{}|{}|{}|{}",
                a("name"),
                a("flags"),
                a("epoch"),
                a("ver"),
                a("rel"),
                a("pre") == "1"
            )
        })
        .collect()
}

fn files_xml(files: impl Iterator<Item = RpmFile>) -> Vec<String> {
    files
        .map(|f| {
            let kind = if f.is_dir() {
                " type=\"dir\""
            } else if f.is_ghost() {
                " type=\"ghost\""
            } else {
                ""
            };
            format!("<file{kind}>{}</file>", f.path)
        })
        .collect()
}

fn parse_files(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("<file"))
        .map(unescape)
        .collect()
}

/// Compares every package of `rpms` with createrepo_c's metadata for them.
pub(super) fn check_against_createrepo(rpms: &[PathBuf]) {
    let [primary, filelists, other] = createrepo(rpms);
    for path in rpms {
        let pkg = read_path(path);
        let href = format!("<location href=\"{}\"/>", pkg.file_name());
        let entry = primary
            .split("<package type=\"rpm\">")
            .find(|p| p.contains(&href))
            .unwrap_or_else(|| panic!("{} not in primary", pkg.file_name()));
        let ctx = pkg.file_name();
        assert_eq!(between(entry, "<name>", "</name>"), Some(pkg.name.as_str()));
        assert_eq!(between(entry, "<arch>", "</arch>"), Some(pkg.arch.as_str()));
        let version = between(entry, "<version", "/>").expect("version");
        assert_eq!(attr(version, "epoch"), Some(pkg.epoch.to_string()), "{ctx}");
        assert_eq!(attr(version, "ver").as_deref(), Some(pkg.version.as_str()));
        assert_eq!(attr(version, "rel").as_deref(), Some(pkg.release.as_str()));
        assert_eq!(
            between(entry, "pkgid=\"YES\">", "</checksum>"),
            Some(pkg.sha256.as_str()),
            "{ctx}"
        );
        let size = between(entry, "<size", "/>").expect("size");
        assert_eq!(attr(size, "package"), Some(pkg.size_package.to_string()));
        assert_eq!(
            attr(size, "installed"),
            Some(pkg.size_installed.to_string())
        );
        assert_eq!(
            attr(size, "archive"),
            Some(pkg.size_archive.to_string()),
            "{ctx}"
        );
        let time = between(entry, "<time", "/>").expect("time");
        assert_eq!(attr(time, "build"), Some(pkg.build_time.to_string()));
        let range = between(entry, "<rpm:header-range", "/>").expect("range");
        assert_eq!(attr(range, "start"), Some(pkg.header_start.to_string()));
        assert_eq!(
            attr(range, "end"),
            Some(pkg.header_end.to_string()),
            "{ctx}"
        );
        let text =
            |tag: &str| between(entry, &format!("<{tag}>"), &format!("</{tag}>")).map(unescape);
        assert_eq!(text("summary"), Some(pkg.summary.clone()));
        assert_eq!(text("description"), Some(pkg.description.clone()));
        assert_eq!(
            text("url").unwrap_or_default(),
            pkg.url.clone().unwrap_or_default()
        );
        assert_eq!(text("rpm:license"), pkg.license.clone());
        assert_eq!(text("rpm:sourcerpm"), Some(pkg.sourcerpm.clone()));
        let format = between(entry, "<format>", "</format>").expect("format");
        for (list, deps, pre) in [
            ("provides", pkg.provides.clone(), false),
            ("requires", pkg.primary_requires(), true),
            ("conflicts", pkg.conflicts.clone(), false),
            ("obsoletes", pkg.obsoletes.clone(), false),
            ("recommends", pkg.recommends.clone(), false),
            ("suggests", pkg.suggests.clone(), false),
            ("supplements", pkg.supplements.clone(), false),
            ("enhances", pkg.enhances.clone(), false),
        ] {
            assert_eq!(
                entries_xml(&deps, pre),
                parse_entries(format, list),
                "{ctx}: {list}"
            );
        }
        let primary_files = pkg
            .files
            .iter()
            .filter(|f| RpmPackage::is_primary_file(&f.path))
            .cloned();
        assert_eq!(
            files_xml(primary_files),
            parse_files(format),
            "{ctx}: primary files"
        );

        let pkgid = format!("pkgid=\"{}\"", pkg.sha256);
        let listed = filelists
            .split("<package ")
            .find(|p| p.starts_with(&pkgid))
            .expect("in filelists");
        assert_eq!(
            files_xml(pkg.files.iter().cloned()),
            parse_files(listed),
            "{ctx}: filelists"
        );
        let changes = other
            .split("<package ")
            .find(|p| p.starts_with(&pkgid))
            .expect("in other");
        let theirs: Vec<String> = changes
            .split("<changelog ")
            .skip(1)
            .map(|c| {
                let c = format!(" {c}");
                let c = c.as_str();
                let text = between(c, ">", "</changelog>").expect("text");
                format!(
                    "{}|{}|{}",
                    attr(c, "author").unwrap_or_default(),
                    attr(c, "date").unwrap_or_default(),
                    unescape(text)
                )
            })
            .collect();
        let ours: Vec<String> = pkg
            .other_changelog(10)
            .iter()
            .map(|c| format!("{}|{}|{}", c.author, c.time, c.text))
            .collect();
        assert_eq!(ours, theirs, "{ctx}: changelog");
    }
}

#[test]
fn fixtures_match_createrepo() {
    let all = fixtures();
    check_against_createrepo(&all[..4]);
    check_against_createrepo(&all[4..]);
}
