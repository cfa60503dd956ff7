//! Reader tests for packages built to hurt: index poisoning through field
//! sizes, and packages apk cannot install (issue 8, items 1 and 7).

use super::builder::{ApkBuilder, Breakage};
use super::limits::{LimitError, MAX_INDEX_LINE};
use super::*;

fn read(apk: &[u8]) -> Result<ApkPackage, ApkError> {
    read_package(apk, &ApkLimits::default())
}

fn base() -> ApkBuilder {
    ApkBuilder::new("demo", "1.0-r0", "x86_64").file("usr/share/demo/readme", b"hello")
}

fn limit_error(apk: &[u8]) -> LimitError {
    match read(apk) {
        Err(ApkError::Limit(e)) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_poisoning_package_is_refused_naming_the_field_and_limit() {
    // Issue 8: 20,000 `depend` lines, one 200 KB `D:` line that made apk
    // refuse the whole repository's index.
    let atoms: Vec<String> = (0..20_000).map(|i| format!("dep-{i:05}")).collect();
    let apk = base().depends(&atoms).build();
    let err = limit_error(&apk);
    assert!(
        matches!(err, LimitError::ListLine { key: "depend", letter: 'D', max, .. } if max == MAX_INDEX_LINE),
        "{err:?}"
    );
    let msg = ApkError::Limit(err).to_string();
    assert!(msg.contains("depend") && msg.contains("65536"), "{msg}");
    // Just under the limit is fine: 6553 atoms of 9 bytes and one of 4.
    let mut atoms: Vec<String> = atoms[..6553].to_vec();
    atoms.push("last".to_owned());
    let record = read(&base().depends(&atoms).build()).unwrap().record;
    assert_eq!(record.depends.len(), 6554);
    assert_eq!(limits::check_rendered_record(&record), []);
    atoms.push("x".to_owned());
    limit_error(&base().depends(&atoms).build());
    // Several atoms per line count the same.
    let apk = base()
        .pkginfo_line(&format!("provides = {}", "p".repeat(40_000)))
        .pkginfo_line(&format!("provides = {}", "q".repeat(40_000)))
        .build();
    assert!(matches!(
        limit_error(&apk),
        LimitError::ListLine {
            key: "provides",
            ..
        }
    ));
}

#[test]
fn long_text_fields_and_big_numbers_are_refused() {
    let apk = base().description(&"d".repeat(4097)).build();
    let msg = limit_error(&apk).to_string();
    assert!(
        msg.starts_with("pkgdesc is 4097 bytes, more than the 4096 allowed"),
        "{msg}"
    );
    read(&base().description(&"d".repeat(4096)).build()).unwrap();
    let apk = base().url(&format!("https://{}", "u".repeat(5000))).build();
    assert!(matches!(
        limit_error(&apk),
        LimitError::Text { key: "url", .. }
    ));
    let apk = base().provider_priority(70_000).build();
    assert!(matches!(
        limit_error(&apk),
        LimitError::Number {
            key: "provider_priority",
            ..
        }
    ));
    let apk = base().build_time(5_000_000_000).build();
    assert!(matches!(
        limit_error(&apk),
        LimitError::Number {
            key: "builddate",
            ..
        }
    ));
}

#[test]
fn an_absurd_installed_size_is_refused() {
    let apk = base().break_with(Breakage::HugeInstalledSize).build();
    match limit_error(&apk) {
        LimitError::InstalledSize {
            actual,
            entries,
            content,
            max,
        } => {
            assert_eq!(actual, u64::MAX);
            // usr/, usr/share/, usr/share/demo/, the file.
            assert_eq!((entries, content), (4, 5));
            assert_eq!(max, 5 + 4 * (64 << 10) + (16 << 20));
        }
        other => panic!("{other:?}"),
    }
    // Rounding to blocks, with directories, is well within the bound:
    // 3000 one-byte files declared as 3000 blocks of 4 KiB plus 3 directories.
    let mut many = ApkBuilder::new("many", "1.0-r0", "x86_64");
    for i in 0..3000 {
        many = many.file(&format!("usr/share/many/{i}"), b"x");
    }
    read(&many.installed_size(3003 * 4096).build()).unwrap();
}

#[test]
fn packages_apk_cannot_install_are_refused() {
    let cases = [
        (Breakage::ThroughSymlink, "etc-link/passwd", "symlink"),
        (Breakage::CharDevice, "dev-null", "character device"),
        (Breakage::BlockDevice, "dev-sda", "block device"),
        (Breakage::Fifo, "fifo", "FIFO"),
        (
            Breakage::MissingParentDir,
            "no-dir/file",
            "no dirent in archive",
        ),
        (
            Breakage::DanglingHardLink,
            "dangling",
            "no hard link target",
        ),
    ];
    for (breakage, path, words) in cases {
        match read(&base().break_with(breakage.clone()).build()) {
            Err(ApkError::Uninstallable(msg)) => {
                assert!(msg.starts_with(&format!("{path}: ")), "{breakage:?}: {msg}");
                assert!(msg.contains(words), "{breakage:?}: {msg}");
                let shown = ApkError::Uninstallable(msg).to_string();
                assert!(
                    shown.starts_with("apk cannot install this package: "),
                    "{shown}"
                );
            }
            other => panic!("{breakage:?}: {other:?}"),
        }
    }
}

#[test]
fn the_entry_count_is_capped() {
    let limits = ApkLimits {
        max_entries: 3,
        ..ApkLimits::default()
    };
    // usr/, usr/share/, usr/share/demo/, readme: four entries.
    match read_package(base().build().as_slice(), &limits) {
        Err(ApkError::Limit(LimitError::Entries { max: 3 })) => {}
        other => panic!("{other:?}"),
    }
    let limits = ApkLimits {
        max_entries: 4,
        ..limits
    };
    read_package(base().build().as_slice(), &limits).unwrap();
}

#[test]
fn every_accepted_fixture_is_within_the_limits() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alpine");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "apk") {
            let file = std::fs::File::open(&path).unwrap();
            let record = read_package(file, &ApkLimits::default())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .record;
            assert_eq!(
                limits::check_rendered_record(&record),
                [],
                "{}",
                path.display()
            );
        }
    }
}
