use super::*;
use crate::formats::apk::{ApkError, ApkLimits, read_package};

fn members(apk: &[u8]) -> Vec<Vec<u8>> {
    let mut rest = apk;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let mut decoder = flate2::bufread::GzDecoder::new(rest);
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(&mut decoder, &mut inflated).unwrap();
        rest = decoder.into_inner();
        out.push(inflated);
    }
    out
}

#[test]
fn builds_three_members_with_the_abuild_layout() {
    let apk = ApkBuilder::new("demo", "1.2.3-r4", "x86_64")
        .file("usr/share/demo/a.txt", b"hello")
        .symlink("usr/bin/demo", "/bin/true")
        .script(".post-install", b"#!/bin/sh\n")
        .build();
    let members = members(&apk);
    assert_eq!(members.len(), 3);
    // Signature and control tars are cut: no zero block at their end.
    assert_eq!(members[0].len(), 1024);
    assert_ne!(&members[0][512..], &[0u8; 512][..]);
    assert_ne!(&members[1][members[1].len() - 512..], &[0u8; 512][..]);
    // The data member ends with two zero blocks.
    assert_eq!(&members[2][members[2].len() - 1024..], &[0u8; 1024][..]);
    // The gzip header is gzip -n -9's.
    assert_eq!(&apk[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
    let pkginfo = String::from_utf8_lossy(&members[1]);
    assert!(pkginfo.contains("pkgname = demo\n"), "{pkginfo}");
    assert!(pkginfo.contains("size = 5\n"), "{pkginfo}");
}

#[test]
fn same_builder_same_bytes() {
    let builder = ApkBuilder::new("demo", "1.0-r0", "noarch").file("a", b"1");
    assert_eq!(builder.build(), builder.build());
    assert_ne!(builder.build(), builder.clone().file("b", b"2").build());
}

#[test]
fn gnu_tar_lists_a_built_package() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo-1.0-r0.apk");
    let apk = ApkBuilder::new("demo", "1.0-r0", "x86_64")
        .file("usr/bin/demo", b"#!/bin/sh\n")
        .build();
    std::fs::write(&path, apk).unwrap();
    let out = std::process::Command::new("tar")
        .arg("-tzf")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        listing,
        ".SIGN.RSA.dummy.rsa.pub\n.PKGINFO\nusr/\nusr/bin/\nusr/bin/demo\n"
    );
}

#[test]
fn built_packages_pass_read_package() {
    let apk = ApkBuilder::new("demo", "2.0_rc1-r1", "aarch64")
        .description("demo package")
        .url("https://example.com")
        .license("Apache-2.0")
        .origin("demo-src")
        .maintainer("A <a@example.com>")
        .build_time(1234)
        .commit("abc123")
        .provider_priority(10)
        .depends(["so:libc.musl-aarch64.so.1", "other>=1.0"])
        .provide("cmd:demo=2.0_rc1-r1")
        .install_if("demo-base")
        .installed_size(4096)
        .dir("etc/demo")
        .file_with_mode("usr/bin/demo", b"binary", 0o755)
        .hardlink("usr/bin/demo2", "usr/bin/demo")
        .symlink("usr/bin/demo3", "../../bin/busybox")
        .build();
    let record = read_package(apk.as_slice(), &ApkLimits::default())
        .unwrap()
        .record;
    assert_eq!(record.name, "demo");
    assert_eq!(record.version, "2.0_rc1-r1");
    assert_eq!(record.arch, "aarch64");
    assert_eq!(record.description, "demo package");
    assert_eq!(record.url, "https://example.com");
    assert_eq!(record.license, "Apache-2.0");
    assert_eq!(record.origin, "demo-src");
    assert_eq!(record.maintainer, "A <a@example.com>");
    assert_eq!(record.build_time, Some(1234));
    assert_eq!(record.commit, "abc123");
    assert_eq!(record.provider_priority, Some(10));
    assert_eq!(record.depends, ["so:libc.musl-aarch64.so.1", "other>=1.0"]);
    assert_eq!(record.provides, ["cmd:demo=2.0_rc1-r1"]);
    assert_eq!(record.install_if, ["demo-base"]);
    assert_eq!(record.installed_size, 4096);
    assert_eq!(record.file_size, apk.len() as u64);
}

#[test]
fn each_breakage_is_refused() {
    let base = || ApkBuilder::new("demo", "1.0-r0", "x86_64").file("usr/share/demo", b"data");
    let read = |b: ApkBuilder| read_package(b.build().as_slice(), &ApkLimits::default());
    assert!(matches!(
        read(base().break_with(Breakage::NoPkginfo)),
        Err(ApkError::Format(_))
    ));
    assert!(matches!(
        read(base().break_with(Breakage::DataNotGzip)),
        Err(ApkError::Format(_))
    ));
    assert!(matches!(
        read(base().break_with(Breakage::MissingField("pkgdesc"))),
        Ok(p) if p.record.description.is_empty()
    ));
}
