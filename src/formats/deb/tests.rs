//! Reading real `.deb` files and comparing with dpkg's own tools: the
//! control fields with `dpkg-deb --field`, the stanza with
//! `dpkg-scanpackages`, for Debian's packages and for packages built here
//! with every compression `dpkg-deb -Z` writes.

use std::path::Path;
use std::process::Command;

use sha2::Digest as _;

use super::tests_build::{control, data_tar, deb, dpkg_build, fixtures, run, scanpackages};
use super::*;

fn read_path(path: &Path) -> DebPackage {
    let file = std::fs::File::open(path).expect("open");
    read_deb(file, &DebLimits::default())
        .unwrap_or_else(|e| panic!("{} refused: {e}", path.display()))
}

/// The control fields in file order, rendered as `dpkg-deb --field` prints them.
fn render_control(pkg: &DebPackage) -> String {
    let mut out = String::new();
    for (name, value) in &pkg.control {
        stanza::write_field(&mut out, name, value);
    }
    out
}

/// dpkg-scanpackages writes no SHA512; ours is its stanza plus that line,
/// right after SHA256.
fn without_sha512(stanza: &str) -> String {
    stanza
        .lines()
        .filter(|l| !l.starts_with("SHA512: "))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn check_against_dpkg(path: &Path) -> DebPackage {
    let pkg = read_path(path);
    let bytes = std::fs::read(path).expect("read");
    assert_eq!(pkg.size, bytes.len() as u64);
    assert_eq!(pkg.sha256, hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(pkg.sha512, hex::encode(sha2::Sha512::digest(&bytes)));
    assert_eq!(pkg.sha1, hex::encode(sha1::Sha1::digest(&bytes)));
    assert_eq!(pkg.md5, hex::encode(md5::Md5::digest(&bytes)));

    let fields = run(Command::new("dpkg-deb").arg("--field").arg(path));
    assert_eq!(
        render_control(&pkg),
        String::from_utf8(fields).expect("UTF-8"),
        "{}: control fields differ from dpkg-deb --field",
        path.display()
    );
    for (name, field) in [
        ("Package", &pkg.package),
        ("Version", &pkg.version),
        ("Architecture", &pkg.architecture),
    ] {
        let out = run(Command::new("dpkg-deb").arg("--field").arg(path).arg(name));
        assert_eq!(String::from_utf8(out).expect("UTF-8").trim_end(), field);
    }

    let name = path.file_name().expect("name").to_string_lossy();
    let ours = pkg.stanza(&format!("pool/{name}"));
    assert!(ours.ends_with('\n') && !ours.ends_with("\n\n"));
    let sha256_line = format!("SHA256: {}\n", pkg.sha256);
    assert!(
        ours.contains(&format!("{sha256_line}SHA512: {}\n", pkg.sha512)),
        "SHA512 right after SHA256:\n{ours}"
    );
    let theirs = scanpackages(path);
    assert_eq!(
        without_sha512(&ours),
        theirs.trim_end_matches('\n').to_owned() + "\n",
        "{}: stanza differs from dpkg-scanpackages",
        path.display()
    );
    pkg
}

#[test]
fn every_fixture_reads_and_matches_dpkg() {
    for path in fixtures() {
        let pkg = check_against_dpkg(&path);
        assert_eq!(
            pkg.file_name(),
            path.file_name().expect("name").to_string_lossy(),
            "file_name() is dpkg-name's name"
        );
    }
}

#[test]
fn fixture_values_and_pool_dirs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deb");
    let hello = read_path(&dir.join("hello_2.10-3_amd64.deb"));
    assert_eq!(hello.size, 53080);
    assert_eq!(
        hello.sha256,
        "2e6e2f1a0007dc43bc91c273fd36e91e40a4f1c2765a03eca68b70a42103878a"
    );
    assert_eq!(hello.pool_dir("main"), "pool/main/h/hello");
    assert!(!hello.is_all());
    assert_eq!(hello.field("depends"), Some("libc6 (>= 2.34)"));

    let libjq = read_path(&dir.join("libjq1_1.6-2.1+deb12u3_amd64.deb"));
    assert_eq!(libjq.source, "jq");
    assert_eq!(libjq.pool_dir("main"), "pool/main/j/jq");
    let onig = read_path(&dir.join("libonig5_6.9.8-1_amd64.deb"));
    assert_eq!(onig.source, "libonig");
    assert_eq!(onig.pool_dir("main"), "pool/main/libo/libonig");
    let sensible = read_path(&dir.join("sensible-utils_0.0.17+nmu1_all.deb"));
    assert!(sensible.is_all());
    assert_eq!(
        sensible.pool_dir("contrib"),
        "pool/contrib/s/sensible-utils"
    );

    let json = serde_json::to_string(&onig).expect("serialize");
    let back: DebPackage = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, onig);
}

const BUILT_CONTROL: &str = "Package: built-pkg\n\
Version: 2:1.2.3~rc1+dfsg-0.1\n\
Architecture: arm64\n\
Maintainer: Test Person <test@example.org>\n\
Source: built-src (1:1.2.3-0.1)\n\
Installed-Size: 12\n\
Section: misc\n\
Priority: optional\n\
Multi-Arch: same\n\
X-Custom-Field: kept verbatim\n\
Zz-Last: unknown fields sort by name\n\
Depends: libc6 (>= 2.36)\n\
Pre-Depends: dpkg (>= 1.19)\n\
Homepage: https://example.org/\n\
Description: a package built by the test\n \
first paragraph\n \
.\n \
..\n  \
indented line\n";

#[test]
fn dpkg_deb_build_every_compression() {
    let dir = tempfile::tempdir().expect("tempdir");
    for compression in ["xz", "gzip", "zstd", "none"] {
        let path = dpkg_build(dir.path(), BUILT_CONTROL, compression);
        let members = run(Command::new("ar").arg("t").arg(&path));
        let members = String::from_utf8(members).expect("UTF-8");
        let suffix = match compression {
            "xz" => ".xz",
            "gzip" => ".gz",
            "zstd" => ".zst",
            _ => "",
        };
        assert!(
            members.contains(&format!("data.tar{suffix}\n")),
            "{compression}: {members}"
        );
        let pkg = check_against_dpkg(&path);
        assert_eq!(pkg.version, "2:1.2.3~rc1+dfsg-0.1");
        assert_eq!(pkg.source, "built-src");
        assert_eq!(pkg.file_name(), "built-pkg_1.2.3~rc1+dfsg-0.1_arm64.deb");
        assert_eq!(pkg.pool_dir("main"), "pool/main/b/built-src");
        assert_eq!(
            pkg.field("Description"),
            Some("a package built by the test\nfirst paragraph\n\n.\n indented line")
        );
    }
}

#[test]
fn hand_built_deb_reads() {
    let bytes = deb(&control("Source: tiny-src\n"), &data_tar());
    let pkg = read_deb(&bytes[..], &DebLimits::default()).expect("valid");
    assert_eq!(pkg.package, "tiny");
    assert_eq!(pkg.source, "tiny-src");
    assert_eq!(pkg.size, bytes.len() as u64);
    // Extra `_` members are skipped, as dpkg does.
    let control_tar = super::tests_build::tar(&[super::tests_build::tar_entry(
        b"./control",
        b'0',
        control("").as_bytes(),
    )]);
    let with_extra = super::tests_build::ar(&[
        ("debian-binary", b"2.0\n"),
        ("_extra", b"odd"),
        ("control.tar", &control_tar),
        ("_more", b"x"),
        ("data.tar", &data_tar()),
        ("_signature", b"sig"),
    ]);
    let pkg = read_deb(&with_extra[..], &DebLimits::default()).expect("valid with extras");
    assert_eq!(pkg.source, "tiny");
    // dpkg-deb --build only warns about a missing Maintainer or Description.
    let bare = deb(
        "Package: bare\nVersion: 0\nArchitecture: all\n",
        &data_tar(),
    );
    let pkg = read_deb(&bare[..], &DebLimits::default()).expect("valid without Description");
    assert_eq!(pkg.field("Description"), None);
    assert_eq!(pkg.file_name(), "bare_0_all.deb");
}

#[test]
fn names_and_versions() {
    for ok in ["hello", "libc6", "g++", "a0", "0ad", "x.y-z+w"] {
        assert!(is_valid_package_name(ok), "{ok}");
    }
    for bad in ["", "a", "Hello", "-a", ".a", "a_b", "a b", "é1"] {
        assert!(!is_valid_package_name(bad), "{bad}");
    }
    for ok in [
        "1",
        "1.0",
        "1:2.0-1",
        "0:1",
        "1.0~rc1-1+b1",
        "2.10-3",
        "1.6-2.1+deb12u3",
        "1:2:3-4",
        "1.0-1-2",
    ] {
        assert!(is_valid_version(ok), "{ok}");
    }
    for bad in [
        "", "a1.0", "1.0-", ":1.0", "x:1.0", "1.0_1", "1.0 1", "1.0-1_2", "1:", "-1", "1.0-a:b",
    ] {
        assert!(!is_valid_version(bad), "{bad}");
    }
    for ok in [
        "all",
        "amd64",
        "arm64",
        "armhf",
        "hurd-i386",
        "kfreebsd-amd64",
    ] {
        assert!(is_valid_arch(ok), "{ok}");
    }
    for bad in [
        "",
        "any",
        "linux-any",
        "any-amd64",
        "AMD64",
        "x86_64",
        &"a".repeat(33),
    ] {
        assert!(!is_valid_arch(bad), "{bad}");
    }
}

#[test]
fn control_parsing_keeps_dpkg_semantics() {
    let fields = parse_control(
        b"\n\nPackage:  spaced  \nversion:1\nArchitecture: all\nDescription: d\n  two\n .\n ..\n\n\n",
    )
    .expect("valid");
    assert_eq!(
        fields,
        vec![
            ("Package".to_owned(), "spaced".to_owned()),
            ("version".to_owned(), "1".to_owned()),
            ("Architecture".to_owned(), "all".to_owned()),
            ("Description".to_owned(), "d\n two\n\n.".to_owned()),
        ]
    );
}

#[test]
fn stanza_orders_fields_like_dpkg_scanpackages() {
    let pkg = DebPackage {
        control: vec![
            ("Description".into(), "last".into()),
            ("Zeta".into(), "z".into()),
            ("Alpha".into(), "a".into()),
            ("Version".into(), "1".into()),
            ("Package".into(), "p1".into()),
            ("Architecture".into(), "all".into()),
        ],
        package: "p1".into(),
        version: "1".into(),
        architecture: "all".into(),
        source: "p1".into(),
        size: 7,
        md5: "m".into(),
        sha1: "s1".into(),
        sha256: "s256".into(),
        sha512: "s512".into(),
    };
    assert_eq!(
        pkg.stanza("pool/main/p/p1/p1_1_all.deb"),
        "Package: p1\nVersion: 1\nArchitecture: all\nFilename: pool/main/p/p1/p1_1_all.deb\n\
         Size: 7\nMD5sum: m\nSHA1: s1\nSHA256: s256\nSHA512: s512\nDescription: last\n\
         Alpha: a\nZeta: z\n"
    );
}
