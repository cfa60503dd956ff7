//! Tests of the package reader, end to end on built packages and fixtures.

use super::builder::{ApkBuilder, Breakage};
use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use std::io::Read;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/alpine")
        .join(name)
}

fn read_fixture(name: &str) -> ApkRecord {
    let file = std::fs::File::open(fixture(name)).unwrap();
    read_package(file, &ApkLimits::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .record
}

fn read(apk: &[u8]) -> Result<ApkPackage, ApkError> {
    read_package(apk, &ApkLimits::default())
}

fn base() -> ApkBuilder {
    ApkBuilder::new("demo", "1.0-r0", "x86_64")
        .file("usr/share/demo/readme", b"hello")
        .file("usr/bin/demo", b"#!/bin/sh\necho demo\n")
}

/// The gzip members of `apk`, as stored.
fn stored_members(apk: &[u8]) -> Vec<Vec<u8>> {
    let mut rest = apk;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let mut decoder = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut decoder, &mut std::io::sink()).unwrap();
        let after = decoder.into_inner();
        out.push(rest[..rest.len() - after.len()].to_vec());
        rest = after;
    }
    out
}

#[test]
fn all_fixtures_parse_with_their_file_names_sizes_and_hashes() {
    let readme = std::fs::read_to_string(fixture("README.md")).unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(fixture("")).unwrap() {
        let path = entry.unwrap().path();
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !file_name.ends_with(".apk") {
            continue;
        }
        seen += 1;
        let record = read_fixture(file_name);
        assert_eq!(record.file_name(), file_name);
        assert_eq!(record.file_size, std::fs::metadata(&path).unwrap().len());
        assert!(
            readme.contains(&format!("{}  {file_name}", record.sha256)),
            "{file_name}: sha256 {} not in README",
            record.sha256
        );
        assert!(
            record.checksum.starts_with("Q1") && record.checksum.len() == 30,
            "{}",
            record.checksum
        );
        assert_eq!(record.datahash.len(), 64);
    }
    assert_eq!(seen, 6);
}

#[test]
fn checksums_match_what_apk_index_writes() {
    assert_eq!(
        read_fixture("gitea-test-1.4.1-r3.apk").checksum,
        "Q1/se1PjO94hYXbfpNR1/61hVORIc="
    );
    assert_eq!(
        read_fixture("gitea-noarch-1.4-r0.apk").checksum,
        "Q1kbH5WoIPFccQYyATanaKXd2cJcc="
    );
}

#[test]
fn noarch_is_reported() {
    let file = std::fs::File::open(fixture("gitea-noarch-1.4-r0.apk")).unwrap();
    let package = read_package(file, &ApkLimits::default()).unwrap();
    assert!(package.is_noarch());
    assert_eq!(package.arch(), "noarch");
    let file = std::fs::File::open(fixture("gitea-test-1.4.1-r3.apk")).unwrap();
    let package = read_package(file, &ApkLimits::default()).unwrap();
    assert!(!package.is_noarch());
    assert_eq!(package.record.maintainer, "KN4CK3R <kn4ck3r@gitea.io>");
    assert_eq!(package.record.url, "https://gitea.io/");
}

#[test]
fn alpine_baselayout_fields() {
    let r = read_fixture("alpine-baselayout-3.2.0-r23.apk");
    assert_eq!(r.name, "alpine-baselayout");
    assert_eq!(r.version, "3.2.0-r23");
    assert_eq!(r.arch, "aarch64");
    assert_eq!(r.installed_size, 339968);
    assert_eq!(r.description, "Alpine base dir structure and init scripts");
    assert_eq!(r.license, "GPL-2.0-only");
    assert_eq!(r.origin, "alpine-baselayout");
    assert_eq!(r.maintainer, "Natanael Copa <ncopa@alpinelinux.org>");
    assert_eq!(r.build_time, Some(1662926906));
    assert_eq!(r.commit, "348653a9ba0701e8e968b3344e72313a9ef334e4");
    assert_eq!(r.provider_priority, None);
    assert_eq!(
        r.depends,
        [
            "alpine-baselayout-data=3.2.0-r23",
            "/bin/sh",
            "so:libc.musl-aarch64.so.1"
        ]
    );
    assert_eq!(r.provides, ["cmd:mkmntdirs=3.2.0-r23"]);
    assert!(r.install_if.is_empty());
    assert_eq!(
        r.datahash,
        "1a3a8e47d2287da6d505d973412cee1ad64bcc17bc5995069e4e932055ecb0c4"
    );
    assert_eq!(r.file_size, 11012);
}

#[test]
fn melange_fixtures_have_their_dependencies() {
    assert_eq!(
        read_fixture("package-y-1.0.0-r0.apk").depends,
        ["package-x"]
    );
    assert_eq!(
        read_fixture("package-x-1.0.0-r0.apk").depends,
        ["pretend-baselayout"]
    );
    let pretend = read_fixture("pretend-baselayout-1.0.0-r0.apk");
    assert!(pretend.depends.is_empty());
    assert_eq!(pretend.commit, "326e0ed687bdfeadac839dc9b25686e4442c9d04");
}

#[test]
fn checksum_is_sha1_of_the_stored_control_member() {
    let apk = base().build();
    let members = stored_members(&apk);
    assert_eq!(members.len(), 3);
    let record = read(&apk).unwrap().record;
    assert_eq!(
        record.checksum,
        format!("Q1{}", BASE64.encode(Sha1::digest(&members[1])))
    );
    assert_eq!(record.datahash, hex::encode(Sha256::digest(&members[2])));
    assert_eq!(record.sha256, hex::encode(Sha256::digest(&apk)));
    assert_eq!(record.file_size, apk.len() as u64);
    // A different signature member changes neither C: nor datahash.
    let mut resigned = crate::formats::apk::gzip(&{
        let mut tar = Vec::new();
        ustar::append_entry(
            &mut tar,
            &ustar::HeaderSpec::file(b".SIGN.RSA256.other.rsa.pub", 3, 0o644),
            b"sig",
            &[],
        );
        tar
    });
    resigned.extend_from_slice(&members[1]);
    resigned.extend_from_slice(&members[2]);
    let again = read(&resigned).unwrap().record;
    assert_eq!(again.checksum, record.checksum);
    assert_ne!(again.sha256, record.sha256);
}

#[test]
fn data_integrity_breakages_are_corrupt() {
    match read(&base().break_with(Breakage::WrongDatahash).build()) {
        Err(ApkError::Corrupt(msg)) => assert!(msg.contains("datahash"), "{msg}"),
        other => panic!("{other:?}"),
    }
    match read(&base().break_with(Breakage::BadFileChecksum).build()) {
        Err(ApkError::Corrupt(msg)) => {
            assert!(
                msg.starts_with("usr/share/demo/readme: content SHA-1"),
                "{msg}"
            )
        }
        other => panic!("{other:?}"),
    }
    match read(&base().break_with(Breakage::MissingFileChecksum).build()) {
        Err(ApkError::Format(msg)) => assert!(msg.contains("APK-TOOLS.checksum.SHA1"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsafe_paths_are_refused() {
    match read(&base().break_with(Breakage::DotDotPath).build()) {
        Err(ApkError::UnsafePath(path)) => assert_eq!(path, "../x"),
        other => panic!("{other:?}"),
    }
    match read(&base().break_with(Breakage::AbsolutePath).build()) {
        Err(ApkError::UnsafePath(path)) => assert_eq!(path, "/x"),
        other => panic!("{other:?}"),
    }
    for path in ["usr/../../etc/passwd", "usr/..", ".."] {
        let apk = base().file(path, b"x").build();
        assert!(
            matches!(read(&apk), Err(ApkError::UnsafePath(p)) if p == path),
            "{path}"
        );
    }
    let escape = base()
        .hardlink("usr/bin/shadow", "../../etc/shadow")
        .build();
    match read(&escape) {
        Err(ApkError::UnsafePath(msg)) => {
            assert!(msg.contains("hard link to ../../etc/shadow"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    let absolute = base().hardlink("usr/bin/shadow", "/etc/shadow").build();
    assert!(matches!(read(&absolute), Err(ApkError::UnsafePath(_))));
    // Symlinks may point anywhere: that is resolved on the client.
    let symlinks = base()
        .symlink("usr/bin/sh", "/bin/busybox")
        .symlink("usr/lib/libx.so", "../../lib/libx.so.1")
        .hardlink("usr/bin/demo2", "usr/bin/demo")
        .build();
    read(&symlinks).unwrap();
    // apk skips `./` and `/./` names as malicious: the package would install broken.
    match read(&base().file("./etc/./demo.conf", b"ok").build()) {
        Err(ApkError::Uninstallable(msg)) => assert!(msg.contains("malicious"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_required_fields_are_refused() {
    for key in ["pkgname", "pkgver", "arch", "size", "datahash"] {
        match read(&base().break_with(Breakage::MissingField(key)).build()) {
            Err(ApkError::PkgInfo(msg)) => {
                assert!(msg.starts_with(&format!("missing {key}")), "{msg}")
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    // Optional ones are not required.
    for key in ["pkgdesc", "url", "license", "origin", "builddate", "commit"] {
        read(&base().break_with(Breakage::MissingField(key)).build())
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}

#[test]
fn invalid_names_versions_and_arches_are_refused() {
    let cases = [
        ("../evil", "1.0-r0", "x86_64", "pkgname"),
        ("a..b", "1.0-r0", "x86_64", "pkgname"),
        ("-dash", "1.0-r0", "x86_64", "pkgname"),
        ("sp ace", "1.0-r0", "x86_64", "pkgname"),
        ("ok", "1.0-1", "x86_64", "pkgver"),
        ("ok", "1.0/../../x", "x86_64", "pkgver"),
        ("ok", "latest", "x86_64", "pkgver"),
        ("ok", "1.0-r0", "x86/64", "arch"),
        ("ok", "1.0-r0", "x86-64", "arch"),
    ];
    for (name, version, arch, field) in cases {
        let apk = ApkBuilder::new(name, version, arch).build();
        match read(&apk) {
            Err(ApkError::PkgInfo(msg)) => {
                assert!(msg.starts_with(field), "{name} {version} {arch}: {msg}")
            }
            other => panic!("{name} {version} {arch}: {other:?}"),
        }
    }
    let long = "a".repeat(250);
    assert!(
        matches!(read(&ApkBuilder::new(&long, "1.0-r0", "x86_64").build()), Err(ApkError::PkgInfo(m)) if m.contains("file name"))
    );
}

#[test]
fn malformed_pkginfo_lines_are_refused() {
    match read(&base().break_with(Breakage::NonUtf8Pkginfo).build()) {
        Err(ApkError::PkgInfo(msg)) => assert!(msg.contains("UTF-8"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let bad = [
        ("pkgname = again", "twice"),
        ("no separator", "key = value"),
        ("builddate = yesterday", "builddate"),
        ("provider_priority = -1", "provider_priority"),
        ("packager = a\u{1b}[31m", "control character"),
    ];
    for (line, expect) in bad {
        let apk = if line.starts_with("builddate") {
            base()
                .break_with(Breakage::MissingField("builddate"))
                .pkginfo_line(line)
                .build()
        } else {
            base().pkginfo_line(line).build()
        };
        match read(&apk) {
            Err(ApkError::PkgInfo(msg)) => assert!(msg.contains(expect), "{line}: {msg}"),
            other => panic!("{line}: {other:?}"),
        }
    }
    // Comments, blank lines, unknown keys, `key =` without a value are fine.
    let ok = base()
        .pkginfo_line("# comment = with separator")
        .pkginfo_line("")
        .pkginfo_line("replaces = other")
        .pkginfo_line("triggers = /usr/share/*")
        .break_with(Breakage::MissingField("commit"))
        .pkginfo_line("commit =")
        .pkginfo_line("depend = a b")
        .pkginfo_line("depend = c")
        .build();
    let record = read(&ok).unwrap().record;
    assert_eq!(record.depends, ["a", "b", "c"]);
    assert_eq!(record.commit, "");
}

#[test]
fn a_long_pkginfo_line_is_refused_at_the_limit() {
    let apk = base().break_with(Breakage::HugePkginfoLine(1000)).build();
    let limits = ApkLimits {
        max_pkginfo_line: 999 + "pkgdesc = ".len(),
        ..ApkLimits::default()
    };
    match read_package(apk.as_slice(), &limits) {
        Err(ApkError::PkgInfo(msg)) => assert!(msg.contains("longer than 1009 bytes"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let limits = ApkLimits {
        max_pkginfo_line: 1000 + "pkgdesc = ".len(),
        ..ApkLimits::default()
    };
    read_package(apk.as_slice(), &limits).unwrap();
}

/// A reader that counts what was taken from it.
struct Counting<'a> {
    inner: &'a [u8],
    taken: &'a std::cell::Cell<usize>,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.taken.set(self.taken.get() + n);
        Ok(n)
    }
}

#[test]
fn a_10_mb_line_is_refused_without_reading_it_all() {
    let apk = base()
        .break_with(Breakage::HugePkginfoLine(10 << 20))
        .build();
    // The line is poorly compressible, so the file itself is big too.
    assert!(apk.len() > 5 << 20, "{}", apk.len());
    let taken = std::cell::Cell::new(0);
    let result = read_package(
        Counting {
            inner: &apk,
            taken: &taken,
        },
        &ApkLimits::default(),
    );
    match result {
        Err(ApkError::PkgInfo(msg)) => assert!(msg.contains("line"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(taken.get() < 512 << 10, "read {} bytes", taken.get());
}

#[test]
fn member_structure_errors_are_format_errors() {
    let cases = [
        (Breakage::ExtraMember, "4th gzip member"),
        (Breakage::TrailingGarbage, "trailing bytes"),
        (Breakage::UncutControl, "end-of-archive"),
        (Breakage::ControlNonDotFile, "usr/bin/early"),
        (Breakage::NoPkginfo, "no .PKGINFO"),
        (Breakage::DataNotGzip, "data member is not gzip"),
    ];
    for (breakage, expect) in cases {
        match read(&base().break_with(breakage.clone()).build()) {
            Err(ApkError::Format(msg)) => assert!(msg.contains(expect), "{breakage:?}: {msg}"),
            other => panic!("{breakage:?}: {other:?}"),
        }
    }
}

#[test]
fn not_gzip_and_unsigned_packages_are_refused() {
    for (input, expect) in [
        (&b""[..], "empty"),
        (&b"hello world"[..], "not a gzip file"),
        (&b"\x1f"[..], "truncated"),
    ] {
        match read(input) {
            Err(ApkError::Format(msg)) => assert!(msg.contains(expect), "{input:?}: {msg}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    let members = stored_members(&base().build());
    let unsigned = [members[1].clone(), members[2].clone()].concat();
    match read(&unsigned) {
        Err(ApkError::Format(msg)) => assert!(msg.contains("unsigned"), "{msg}"),
        other => panic!("{other:?}"),
    }
    // A signature tar that keeps its end blocks hides the rest from apk.
    let mut tar = Vec::new();
    ustar::append_entry(
        &mut tar,
        &ustar::HeaderSpec::file(b".SIGN.RSA.k.rsa.pub", 1, 0o644),
        b"s",
        &[],
    );
    ustar::append_end(&mut tar);
    let uncut = [gzip(&tar), members[1].clone(), members[2].clone()].concat();
    match read(&uncut) {
        Err(ApkError::Format(msg)) => assert!(
            msg.contains("signature member") && msg.contains("cut"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_truncation_is_a_format_error() {
    let apk = base().build();
    for len in 0..apk.len() {
        match read(&apk[..len]) {
            Err(ApkError::Format(_)) => {}
            other => panic!("truncated to {len} of {}: {other:?}", apk.len()),
        }
    }
    read(&apk).unwrap();
}

#[test]
fn corrupt_gzip_is_a_format_error() {
    let apk = base().build();
    let members = stored_members(&apk);
    // Flip a bit of the data member's CRC-32 (its trailer's first byte).
    let crc_at = apk.len() - 8;
    let mut bad = apk.clone();
    bad[crc_at] ^= 1;
    match read(&bad) {
        Err(ApkError::Format(msg)) => {
            assert!(msg.contains("data member is not valid gzip"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    // Same in the control member's trailer.
    let control_end = members[0].len() + members[1].len();
    let mut bad = apk.clone();
    bad[control_end - 8] ^= 1;
    assert!(matches!(read(&bad), Err(ApkError::Format(m)) if m.contains("control member")));
}

#[test]
fn read_errors_are_io_errors() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let apk = base().build();
    let failing_midway = apk[..apk.len() / 2].chain(Failing);
    match read_package(failing_midway, &ApkLimits::default()) {
        Err(ApkError::Io(e)) => assert_eq!(e.to_string(), "disk on fire"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn inflation_is_capped() {
    // Control: a big script against a small control budget.
    let apk = base().script(".post-install", &vec![b'#'; 100_000]).build();
    let limits = ApkLimits {
        max_control_bytes: 50_000,
        ..ApkLimits::default()
    };
    match read_package(apk.as_slice(), &limits) {
        Err(ApkError::TooLarge(msg)) => assert!(msg.contains("50000"), "{msg}"),
        other => panic!("{other:?}"),
    }
    read(&apk).unwrap();

    // Data: the hard cap, whatever .PKGINFO says.
    let apk = base().file("big", &vec![0u8; 300_000]).build();
    let limits = ApkLimits {
        max_data_bytes: 200_000,
        ..ApkLimits::default()
    };
    match read_package(apk.as_slice(), &limits) {
        Err(ApkError::TooLarge(msg)) => assert!(msg.contains("200000"), "{msg}"),
        other => panic!("{other:?}"),
    }

    // Data: a size far below what the data member inflates to (a zip
    // bomb claims to be small). 8 MiB of zeros compress to a few KiB.
    let bomb = base()
        .installed_size(10)
        .file("zeros", &vec![0u8; 8 << 20])
        .build();
    assert!(bomb.len() < 64 << 10);
    match read(&bomb) {
        Err(ApkError::TooLarge(msg)) => assert!(msg.contains(".PKGINFO size 10"), "{msg}"),
        other => panic!("{other:?}"),
    }
    // Honest sizes pass, as does a size a bit under the content (slack).
    read(&base().file("zeros", &vec![0u8; 8 << 20]).build()).unwrap();
    read(
        &base()
            .installed_size(1)
            .file("f", &vec![1u8; 100_000])
            .build(),
    )
    .unwrap();
}

#[test]
fn many_small_files_fit_the_per_header_allowance() {
    let mut builder = ApkBuilder::new("many", "1.0-r0", "x86_64");
    for i in 0..3000 {
        builder = builder.file(&format!("usr/share/many/{i}"), b"x");
    }
    read(&builder.build()).unwrap();
}
