//! Packages built to hurt a repository: over the limits that keep the index
//! readable by apk (docs/limits.md), or impossible for apk to install. They
//! run with the other bad inputs (library on every backend, CLI), and here
//! through the HTTP API with a repo token, as a compromised CI job sends them.

use packages::formats::apk::builder::Breakage;

use super::{Case, Want, good};
use crate::api::{Part, TestApp};
use crate::support::assert_unchanged;

/// 20,000 `depend` lines: the package whose one `D:` line made apk refuse the
/// whole repository's index (issue 8).
fn poison() -> Vec<u8> {
    let atoms: Vec<String> = (0..20_000).map(|i| format!("dep-{i:05}")).collect();
    good().depends(&atoms).build()
}

/// Packages over a limit, and packages apk could not install.
pub(super) fn cases() -> Vec<Case> {
    let uninstallable = |name, breakage, words| Case {
        name,
        bytes: good().break_with(breakage).build(),
        arch: None,
        want: Want::Uninstallable,
        words,
    };
    vec![
        Case {
            name: "poison-20000-depends",
            bytes: poison(),
            arch: None,
            want: Want::Limit,
            words: &["depend", "`D:`", "65536"],
        },
        Case {
            name: "long-description",
            bytes: good().description(&"d".repeat(5000)).build(),
            arch: None,
            want: Want::Limit,
            words: &["pkgdesc", "5000", "4096"],
        },
        Case {
            name: "provider-priority-over-16-bits",
            bytes: good().provider_priority(1 << 20).build(),
            arch: None,
            want: Want::Limit,
            words: &["provider_priority", "65535"],
        },
        Case {
            name: "size-2-to-the-64",
            bytes: good().break_with(Breakage::HugeInstalledSize).build(),
            arch: None,
            want: Want::Limit,
            words: &["size 18446744073709551615"],
        },
        uninstallable(
            "file-through-symlink",
            Breakage::ThroughSymlink,
            &["etc-link/passwd", "symlink"],
        ),
        uninstallable(
            "char-device",
            Breakage::CharDevice,
            &["dev-null", "character device"],
        ),
        uninstallable(
            "block-device",
            Breakage::BlockDevice,
            &["dev-sda", "block device"],
        ),
        uninstallable("fifo", Breakage::Fifo, &["fifo", "FIFO"]),
        uninstallable(
            "no-parent-dirent",
            Breakage::MissingParentDir,
            &["no-dir/file", "no dirent"],
        ),
        uninstallable(
            "dangling-hard-link",
            Breakage::DanglingHardLink,
            &["not-in-package", "no hard link target"],
        ),
    ]
}

/// The hostile packages through the HTTP API with a repo token, the way a
/// compromised CI job would send them: 422 naming the file and the problem,
/// nothing stored, and the repository's index unchanged and readable by apk.
#[tokio::test]
async fn hostile_packages_are_refused_over_http() {
    let app = TestApp::new().await;
    let token = app.token("acme/alpine/edge/main", false).await;
    let uri = "/api/v1/orgs/acme/distros/alpine/versions/edge/repos/main/packages";
    let first = good().build();
    app.post_form(
        uri,
        Some(&token),
        &[Part::File("package", "demo-1.0-r0.apk", &first)],
    )
    .await
    .expect(201);
    let before = app.snapshot().await;
    for case in cases() {
        let file = format!("{}.apk", case.name);
        let message = app
            .post_form(
                uri,
                Some(&token),
                &[Part::File("package", &file, &case.bytes)],
            )
            .await
            .expect_error(422);
        assert!(message.contains(&file), "{}: {message}", case.name);
        for word in case.words {
            assert!(
                message.contains(word),
                "{}: {word:?} in {message}",
                case.name
            );
        }
        assert_unchanged(&before, &app.snapshot().await, case.name);
    }
    let index = app.index("edge", "main", "x86_64").await;
    assert_eq!(index.names(), ["demo"]);
    assert_eq!(
        packages::formats::apk::limits::check_index_text(&index.text),
        []
    );
}
