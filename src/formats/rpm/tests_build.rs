//! Packages built here with `rpmbuild` (every payload compression, weak
//! dependencies, scriptlet pre-requires, directories, ghosts, config files,
//! an epoch, a long changelog) compared with `rpm -qp` and `createrepo_c`;
//! a source package, which is refused; and the digest checks, which
//! agree with `rpm -K`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::tests::{check_against_createrepo, check_against_rpm, run};
use super::*;

const RICH_SPEC: &str = r#"Name: rich-pkg
Epoch: 3
Version: 1.2~rc1
Release: 4.fc39
Summary: A rich package & <friends>
License: MIT and (BSD or GPL-2.0-or-later)
URL: https://example.invalid/rich?a=1&b=2
Vendor: Example & Co
Packager: Tester <t@example.invalid>
Group: Applications/System
AutoReqProv: no
Requires: libfoo >= 2:1.0-3
Requires(pre): /bin/sh
Requires(post): coreutils
Requires(posttrans): findutils
Requires: /usr/bin/rich-tool
Requires: rich-virtual = 5
Requires: libc.so.6(GLIBC_2.4)(64bit)
Requires: libc.so.6(GLIBC_2.34)(64bit)
Requires: libc.so.6()(64bit)
Requires: libc.so.6(GLIBC_2.17)(64bit)
Requires: libfoo >= 2:1.0-3
Provides: rich-virtual = 5
Provides: rich-plain
Conflicts: old-rich < 1.0
Obsoletes: rich-legacy <= 0.9
Recommends: rich-extra
Suggests: rich-docs > 1
Supplements: rich-base
Enhances: rich-core >= 0:2

%description
Line one & <two>.

Second paragraph.

%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc/rich %{buildroot}/usr/share/rich/sub
printf 'x\n' > %{buildroot}/usr/bin/rich-tool
chmod 755 %{buildroot}/usr/bin/rich-tool
printf 'c\n' > %{buildroot}/etc/rich/rich.conf
printf 'd\n' > %{buildroot}/usr/share/rich/sub/data

%pre
true

%post
true

%files
%attr(755, root, root) /usr/bin/rich-tool
%dir /etc/rich
%config(noreplace) /etc/rich/rich.conf
/usr/share/rich
%ghost /var/log/rich.log

%changelog
"#;

/// Builds `spec` with `rpmbuild` (`-bb` or `-bs`) under `dir` with extra
/// macro definitions, and returns the package written.
pub(super) fn rpmbuild(dir: &Path, spec: &str, mode: &str, defines: &[&str]) -> PathBuf {
    let spec_path = dir.join("pkg.spec");
    std::fs::write(&spec_path, spec).expect("write spec");
    let top = dir.join("top");
    let mut cmd = Command::new("rpmbuild");
    cmd.arg(mode)
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_dbpath {}", dir.join("db").display()));
    for d in defines {
        cmd.arg("--define").arg(d);
    }
    run(cmd.arg("--quiet").arg(&spec_path));
    let out = top.join(if mode == "-bs" { "SRPMS" } else { "RPMS" });
    let mut found = Vec::new();
    let mut stack = vec![out];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p);
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().expect("one package")
}

fn rich_spec() -> String {
    let mut spec = RICH_SPEC.to_owned();
    // The newest three share a day (createrepo_c moves them apart).
    let days = ["Wed", "Tue", "Mon", "Sun", "Sat", "Fri", "Thu"];
    for i in 0usize..12 {
        let back: usize = i.saturating_sub(2);
        spec.push_str(&format!(
            "* {} Nov {} 2026 Tester <t@example.invalid> - 3:1.2~rc1-{i}\n- change {i} & <more>\n\n",
            days[back % 7],
            25 - back
        ));
    }
    spec
}

#[test]
fn built_packages_match_rpm_and_createrepo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut built = Vec::new();
    for (i, payload) in ["w9.gzdio", "w6.xzdio", "w19.zstdio", "w2.bzdio"]
        .into_iter()
        .enumerate()
    {
        let sub = dir.path().join(i.to_string());
        std::fs::create_dir(&sub).expect("mkdir");
        let path = rpmbuild(
            &sub,
            &rich_spec().replace("Release: 4.fc39", &format!("Release: {i}.fc39")),
            "-bb",
            &[&format!("_binary_payload {payload}")],
        );
        let pkg = check_against_rpm(&path);
        assert_eq!(pkg.epoch, 3);
        assert_eq!(pkg.changelog.len(), 12);
        built.push(path);
    }
    check_against_createrepo(&built);

    let pkg = tests::read_path(&built[0]);
    let pre: Vec<&str> = pkg
        .requires
        .iter()
        .filter(|d| d.pre)
        .map(|d| d.name.as_str())
        .collect();
    // Scriptlet interpreters (/bin/sh) and Requires(pre/post) are pre;
    // createrepo_c 0.17 leaves posttrans out.
    assert!(
        pre.contains(&"/bin/sh") && pre.contains(&"coreutils"),
        "{pre:?}"
    );
    assert!(!pre.contains(&"findutils"), "{pre:?}");
    let primary: Vec<String> = pkg.primary_requires().into_iter().map(|d| d.name).collect();
    for gone in [
        "rpmlib(",
        "rich-virtual",
        "/usr/bin/rich-tool",
        "libc.so.6()",
    ] {
        assert!(
            !primary.iter().any(|n| n.starts_with(gone)),
            "{gone} in {primary:?}"
        );
    }
    assert_eq!(
        primary.last().map(String::as_str),
        Some("libc.so.6(GLIBC_2.34)(64bit)")
    );
    assert_eq!(
        primary.iter().filter(|n| n.starts_with("libc.so")).count(),
        1
    );
    let libfoo = pkg
        .requires
        .iter()
        .find(|d| d.name == "libfoo")
        .expect("libfoo");
    assert_eq!(
        (
            libfoo.flags.as_deref(),
            libfoo.epoch.as_deref(),
            libfoo.version.as_deref(),
            libfoo.release.as_deref()
        ),
        (Some("GE"), Some("2"), Some("1.0"), Some("3"))
    );
    let ghost = pkg
        .files
        .iter()
        .find(|f| f.path == "/var/log/rich.log")
        .expect("ghost");
    assert!(ghost.is_ghost() && !ghost.is_dir());
    assert!(
        pkg.files
            .iter()
            .any(|f| f.path == "/etc/rich" && f.is_dir())
    );
    assert_eq!(pkg.conflicts[0].flags.as_deref(), Some("LT"));
    assert_eq!(pkg.obsoletes[0].flags.as_deref(), Some("LE"));
    assert_eq!(pkg.suggests[0].flags.as_deref(), Some("GT"));
    assert_eq!(pkg.recommends[0].flags, None);
    assert_eq!(pkg.vendor.as_deref(), Some("Example & Co"));
    assert!(!pkg.signed);
    assert_eq!(pkg.changelog[0].time, pkg.changelog[2].time);
    let other = pkg.other_changelog(10);
    assert_eq!(other.len(), 10);
    let t = pkg.changelog[0].time;
    let newest: Vec<u64> = other[7..].iter().map(|c| c.time).collect();
    assert_eq!(newest, [t, t + 1, t + 2]);
    assert_eq!(pkg.file_name(), "rich-pkg-1.2~rc1-0.fc39.x86_64.rpm");
}

#[test]
fn source_package_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = rpmbuild(dir.path(), &rich_spec(), "-bs", &[]);
    let err = read_rpm(
        std::fs::File::open(&path).expect("open"),
        &RpmLimits::default(),
    )
    .expect_err("a source rpm");
    assert!(matches!(err, RpmError::SourcePackage(_)), "{err}");
    assert!(err.to_string().contains("source package"), "{err}");
}

/// Whether `rpm -K` (digests only, no key) accepts the file.
fn rpm_digests_ok(path: &Path) -> bool {
    Command::new("rpm")
        .arg("--dbpath")
        .arg(std::env::temp_dir().join("packages-rpmread-nodb"))
        .arg("-K")
        .arg("--nosignature")
        .arg(path)
        .output()
        .expect("rpm must be installed")
        .status
        .success()
}

#[test]
fn digest_checks_agree_with_rpm_k() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good =
        std::fs::read(tests::fixture_dir().join("acc-lib-1.2.0-1.x86_64.rpm")).expect("read");
    let header_end = tests::read_path(&tests::fixture_dir().join("acc-lib-1.2.0-1.x86_64.rpm"))
        .header_end as usize;
    // (offset to flip, whether rpm and we accept it): the lead's legacy
    // name and the signature header's SIZE tag are not checked by rpm; the
    // main header and the payload are.
    let size_tag = 96 + 16 + 7 * 16 + 108 + 3;
    for (at, accepted) in [
        (None, true),
        (Some(20), true),
        (Some(size_tag), true),
        (Some(header_end - 100), false),
        (Some(header_end + 10), false),
        (Some(good.len() - 1), false),
    ] {
        let mut bytes = good.clone();
        if let Some(at) = at {
            bytes[at] ^= 1;
        }
        let path = dir.path().join("x.rpm");
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(rpm_digests_ok(&path), accepted, "rpm -K, flip at {at:?}");
        assert_eq!(
            read_rpm(&bytes[..], &RpmLimits::default()).is_ok(),
            accepted,
            "read_rpm, flip at {at:?}"
        );
    }
}

#[test]
fn signed_fixtures_verify_with_rpmkeys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signed = tests::fixture_dir().join("signed");
    run(Command::new("rpmkeys")
        .arg("--dbpath")
        .arg(dir.path())
        .arg("--import")
        .arg(signed.join("signing-key.asc")));
    for name in ["acc-lib-1.2.0-1.x86_64.rpm", "acc-data-0.9-1.noarch.rpm"] {
        let out = run(Command::new("rpmkeys")
            .arg("--dbpath")
            .arg(dir.path())
            .arg("-K")
            .arg(signed.join(name)));
        assert!(out.contains("signatures OK"), "{out}");
        assert!(tests::read_path(&signed.join(name)).signed);
    }
}

/// A package whose dependencies rpmbuild generates from a real ELF binary
/// (`libc.so.6(GLIBC_…)(64bit)`, `rtld(GNU_HASH)`), with 300 files in 150
/// directories.
const AUTO_SPEC: &str = r#"Name: auto-deps
Version: 1
Release: 1
Summary: generated dependencies
License: MIT
%description
d
%install
mkdir -p %{buildroot}/usr/bin
cp /usr/bin/true %{buildroot}/usr/bin/auto-true
for d in a b c; do for i in $(seq 1 50); do
  mkdir -p %{buildroot}/usr/share/auto/$d/sub$i
  echo $i > %{buildroot}/usr/share/auto/$d/sub$i/f
  echo $i > %{buildroot}/usr/share/auto/$d/sub$i/bin.txt
done; done
%files
/usr/bin/auto-true
/usr/share/auto
"#;

#[test]
fn generated_dependencies_and_many_files_match() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = rpmbuild(dir.path(), AUTO_SPEC, "-bb", &["debug_package %{nil}"]);
    let pkg = check_against_rpm(&path);
    check_against_createrepo(std::slice::from_ref(&path));
    assert!(pkg.files.len() > 450, "{}", pkg.files.len());
    assert!(
        pkg.requires
            .iter()
            .filter(|d| d.name.starts_with("libc.so.6"))
            .count()
            > 2
    );
    let primary = pkg.primary_requires();
    let libc: Vec<_> = primary
        .iter()
        .filter(|d| d.name.starts_with("libc.so.6"))
        .collect();
    assert_eq!(libc.len(), 1, "{libc:?}");
}

#[test]
fn vercmp_examples() {
    use std::cmp::Ordering::{Equal, Greater, Less};
    for (a, b, want) in [
        ("1.0", "1.0.1", Less),
        ("1.0~rc1", "1.0", Less),
        ("1.0", "1.0^git1", Less),
        ("1.0^git1", "1.0.1", Less),
        ("1.a", "1.1", Less),
        ("2.0.01", "2.0.1", Equal),
        ("1.0a", "1.0", Greater),
        ("2.34", "2.4", Greater),
        ("2.2.5", "2.14", Less),
    ] {
        assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
        assert_eq!(rpmvercmp(b, a), want.reverse(), "{b} vs {a}");
    }
    assert_eq!(compare_evr((1, "1.0", "1"), (0, "9.9", "9")), Greater);
    assert_eq!(
        compare_evr((0, "1.0", "1.fc39"), (0, "1.0", "1.fc40")),
        Less
    );
    assert_eq!(compare_evr((0, "1.0", "01"), (0, "1.0", "1")), Equal);
}
